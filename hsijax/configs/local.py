"""The real scenes in ../shared/data plus Indian Pines, sized for a 2-core CPU (about 10 minutes).

    hsijax pretrain --config hsijax/configs/local.py --workdir runs/local

Twelve scenes from four sensors (AVIRIS, EO-1 Hyperion, the Houston 2018 CASI, and AVIRIS
anomaly-detection chips), 48 to 224 bands. They are imported on first use from ``../shared/data``
beside the repository (this project's machine), with every wavelength list the data provides
(Moffett's table at its selected bands, Hyperion's nominal centres at the Paris cube's bands, the
Houston 2018 CASI's nominal 380-1050 nm); Salton Sea (its 20 NaN bands dropped) is imported only by
`leave_out.py`, so that this list stays what the README's earlier numbers were trained on. The
anomaly chips carry their anomaly maps as labels (for RX detection; pretraining ignores labels), and
Houston 2018 its 0.5-m labels brought to the 1-m image by block majority (`--gt-majority`).
"""

from pathlib import Path

from hsijax.configs import base

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"

IMPORTS = {
    "jasper_ridge": f"{SHARED}/JasperRidge/jasperRidge2_R198.mat --shape 100 100 --sensor AVIRIS "
                    f"--wavelengths {SHARED}/JasperRidge/jasperRidge2_R198.hdr",
    "samson": f"{SHARED}/Samson/samson_1.mat --shape 95 95 --sensor SAMSON "
              f"--wavelengths {SHARED}/Samson/samson_1.img.hdr",
    "san_diego": f"{SHARED}/SanDiego/sandiego.mat --key data --gt {SHARED}/SanDiego/sandiego.mat --gt-key map "
                   "--sensor AVIRIS",
    "moffett": f"{SHARED}/Moffett/Moffett_vca.mat --key data --sensor AVIRIS "
               f"--wavelengths {SHARED}/Moffett/Moffet_wavelength.txt "
               f"--keep-bands {SHARED}/Moffett/Moffett_vca.mat --keep-bands-key selected_bands",
    "aviris_demo": f"{SHARED}/AVIRIS_VI_demo/a_hsi_img_for_VI_demo.mat --key hsi_img --sensor AVIRIS "
                   f"--wavelengths {SHARED}/AVIRIS_VI_demo/a_hsi_img_for_VI_demo.mat",
    "paris_hyperion": f"{SHARED}/Hyperion_Paris/paris_data_hs_ms.mat --key HSim --sensor Hyperion "
                      f"--wavelengths hyperion --keep-bands {SHARED}/Hyperion_Paris/paris_data_hs_ms.mat "
                      "--keep-bands-key non_del_bands",
    "houston2018": f"{SHARED}/Houston2018/houston_dataset.mat --key hyprImg --sensor CASI "
                   f"--wavelengths linspace:380:1050 --gt {SHARED}/Houston2018/houston_dataset.mat "
                   "--gt-key clasLabs --gt-majority",
    "abu_airport_1": f"{SHARED}/ABU/abu-airport-1.mat --key data --gt {SHARED}/ABU/abu-airport-1.mat --gt-key map "
                     "--sensor AVIRIS",
    "abu_beach_1": f"{SHARED}/ABU/abu-beach-1.mat --key data --gt {SHARED}/ABU/abu-beach-1.mat --gt-key map "
                   "--sensor AVIRIS",
    "abu_urban_1": f"{SHARED}/ABU/abu-urban-1.mat --key data --gt {SHARED}/ABU/abu-urban-1.mat --gt-key map "
                   "--sensor AVIRIS",
    "abu_urban_2": f"{SHARED}/ABU/abu-urban-2.mat --key data --gt {SHARED}/ABU/abu-urban-2.mat --gt-key map "
                   "--sensor AVIRIS",
}
# The 2,832 labelled Houston 2013 training spectra (CASI, 144 bands), as a 2832 x 1 image.
HOUSTON2013 = (f"{SHARED}/Houston2013/HSI_TrSet.mat --shape 2832 1 --gt {SHARED}/Houston2013/TrLabel.mat "
               "--sensor CASI --wavelengths linspace:380:1050")
# Not in the `local` scene list (which reproduces the README's earlier numbers); used by leave_out.py.
SALTON_SEA = (f"{SHARED}/SaltonSea/salton_sea_roi.mat --key I --sensor AVIRIS --wavelengths "
              f"{SHARED}/SaltonSea/salton_sea_roi.mat --wavelengths-key wl --keep-bands "
              f"{SHARED}/SaltonSea/salton_sea_roi.mat --keep-bands-key bbl")


def get_config():
    config = base.get_config()
    config.data.scenes = ",".join(["indian_pines", *IMPORTS])
    config.data.imports.update(IMPORTS)
    config.data.mixing = "uniform"  # the small chips would hardly be seen in proportion to pixels
    # The format the README's local, study and shipped numbers were trained with (unseen, shipped and
    # study inherit it), so their commands reproduce them; format 2 reads faster, not the same batches.
    config.data.pipeline_format = 1
    config.train.steps = 3000
    config.train.batch_size = 256
    config.train.log_every = 50
    config.train.eval_every = 500
    config.train.checkpoint_every = 500
    return config
