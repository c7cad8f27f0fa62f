"""The real scenes in ../shared/data plus Indian Pines, sized for a 2-core CPU (about 10 minutes).

    hsijax pretrain --config hsijax/configs/local.py --workdir runs/local

Twelve scenes from four sensors (AVIRIS, EO-1 Hyperion, the Houston 2018 CASI, and AVIRIS
anomaly-detection chips), 48 to 224 bands. They are imported on first use from
``config.data.source_dir`` (``../shared/data``, relative to where the command runs: this project's
machine keeps the scenes beside the repository; ``--config.data.source_dir=DIR`` points elsewhere),
with every wavelength list the data provides (Moffett's table at its selected bands, Hyperion's
nominal centres at the Paris cube's bands, the Houston 2018 CASI's nominal 380-1050 nm); Salton
Sea (its 20 NaN bands dropped) is imported only by `leave_out.py`, so that this list stays what the
earlier numbers were trained on. The anomaly chips carry their anomaly maps as labels (for RX
detection; pretraining ignores labels), and Houston 2018 its 0.5-m labels brought to the 1-m image
by block majority (``gt_majority``).
"""

from hsijax.configs import base

SOURCE_DIR = "../shared/data"


def _anomaly_chip(name: str) -> dict:
    """An ABU chip (or San Diego): the cube in ``data``, its anomaly map in ``map``."""
    return dict(file=name, key="data", gt=name, gt_key="map", sensor="AVIRIS")


# name -> `hsijax import` options (`hsijax.data.loading.ImportOptions`), paths under data.source_dir.
IMPORTS = {
    "jasper_ridge": dict(file="JasperRidge/jasperRidge2_R198.mat", shape=(100, 100), sensor="AVIRIS",
                         wavelengths="JasperRidge/jasperRidge2_R198.hdr"),
    "samson": dict(file="Samson/samson_1.mat", shape=(95, 95), sensor="SAMSON", wavelengths="Samson/samson_1.img.hdr"),
    "san_diego": _anomaly_chip("SanDiego/sandiego.mat"),
    "moffett": dict(file="Moffett/Moffett_vca.mat", key="data", sensor="AVIRIS",
                    wavelengths="Moffett/Moffet_wavelength.txt", keep_bands="Moffett/Moffett_vca.mat",
                    keep_bands_key="selected_bands"),
    "aviris_demo": dict(file="AVIRIS_VI_demo/a_hsi_img_for_VI_demo.mat", key="hsi_img", sensor="AVIRIS",
                        wavelengths="AVIRIS_VI_demo/a_hsi_img_for_VI_demo.mat"),
    "paris_hyperion": dict(file="Hyperion_Paris/paris_data_hs_ms.mat", key="HSim", sensor="Hyperion",
                           wavelengths="hyperion", keep_bands="Hyperion_Paris/paris_data_hs_ms.mat",
                           keep_bands_key="non_del_bands"),
    "houston2018": dict(file="Houston2018/houston_dataset.mat", key="hyprImg", sensor="CASI",
                        wavelengths="linspace:380:1050", gt="Houston2018/houston_dataset.mat", gt_key="clasLabs",
                        gt_majority=True),
    "abu_airport_1": _anomaly_chip("ABU/abu-airport-1.mat"),
    "abu_beach_1": _anomaly_chip("ABU/abu-beach-1.mat"),
    "abu_urban_1": _anomaly_chip("ABU/abu-urban-1.mat"),
    "abu_urban_2": _anomaly_chip("ABU/abu-urban-2.mat"),
}
# The 2,832 labelled Houston 2013 training spectra (CASI, 144 bands), as a 2832 x 1 image.
HOUSTON2013 = dict(file="Houston2013/HSI_TrSet.mat", shape=(2832, 1), gt="Houston2013/TrLabel.mat", sensor="CASI",
                   wavelengths="linspace:380:1050")
# Not in the `local` scene list (which reproduces the earlier numbers); used by leave_out.py.
SALTON_SEA = dict(file="SaltonSea/salton_sea_roi.mat", key="I", sensor="AVIRIS",
                  wavelengths="SaltonSea/salton_sea_roi.mat", wavelengths_key="wl",
                  keep_bands="SaltonSea/salton_sea_roi.mat", keep_bands_key="bbl")


def get_config():
    config = base.get_config()
    config.data.source_dir = SOURCE_DIR
    config.data.scenes = ",".join(["indian_pines", *IMPORTS])
    config.data.imports.update({name: base.import_fields(options) for name, options in IMPORTS.items()})
    config.data.mixing = "uniform"  # the small chips would hardly be seen in proportion to pixels
    # The format the local, study and shipped numbers were trained with (unseen, shipped and study
    # inherit it), so their commands reproduce them; format 2 reads faster, not the same batches.
    config.data.pipeline_format = 1
    config.train.steps = 3000
    config.train.batch_size = 256
    config.train.log_every = 50
    config.train.eval_every = 500
    config.train.checkpoint_every = 500
    return config
