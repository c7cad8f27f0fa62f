"""The poster's CNN that ships inside hsijax (`hsijax.load_pretrained("poster")`, ``--checkpoint
poster``; the default until the linear network on the wavelength grid replaced it): every usable
real scene in ../shared/data, the model the decoder study chose.

    hsijax pretrain --config shipped --workdir runs/shipped
    rm -rf hsijax/weights/shared_encoder
    hsijax export --checkpoint runs/shipped --output hsijax/weights/shared_encoder \
        --card hsijax/weights/POSTER_MODEL_CARD.md

The `local` scenes plus the other eight ABU chips: 20 scenes from four sensors (AVIRIS, EO-1
Hyperion, SAMSON, the Houston 2018 CASI). Left out: Salton Sea (NaN bands), Houston 2013 (spectra
of labelled pixels only, no image), the second Hyperion Paris crop (the same scene), and the
scenes of which only ground truth is here (Pavia U, Salinas, KSC).

The decoder is the study's choice by the mean MPSNR on the scenes it left out of pretraining
(docs/study/README.md; at code width 16: faithful 22.57 dB, conditioned 17.63 dB), never by a
classification score. The code width stays at the default 16: this pretraining had to start
before the study's other widths were done.
"""

from hsijax.configs import base, local

OTHER_ABU_CHIPS = ("airport-2", "airport-3", "airport-4", "beach-2", "beach-3", "urban-3", "urban-4", "urban-5")
IMPORTS = {
    f"abu_{chip.replace('-', '_')}": dict(file=f"ABU/abu-{chip}.mat", key="data", sensor="AVIRIS")
    for chip in OTHER_ABU_CHIPS
}


def get_config():
    config = local.get_config()
    config.data.scenes = ",".join([*config.data.scenes.split(","), *IMPORTS])
    config.data.imports.update({name: base.import_fields(options) for name, options in IMPORTS.items()})
    config.model.decoder = "faithful"
    config.model.code_width = 16
    config.train.steps = 4000
    return config
