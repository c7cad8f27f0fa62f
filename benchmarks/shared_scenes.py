"""Every image in ../shared/data and how to import it, with what SOURCES.md says it holds.

Used by the import test (shapes and label counts) and by `benchmarks/import_shared.py` (time and
disk size). Rows: file, `hsijax import` options, (H, W, b), labelled pixels, classes (None: no
labels). ABU and San Diego maps are anomaly masks (1 class). Salton Sea has NaN bands and must be
refused.
"""

ABU = [("airport-1", 205, 144), ("airport-2", 205, 87), ("airport-3", 205, 170), ("airport-4", 191, 60),
       ("beach-2", 193, 202), ("beach-3", 188, 11), ("urban-1", 204, 67), ("urban-2", 207, 155),
       ("urban-3", 191, 52), ("urban-4", 205, 272), ("urban-5", 205, 232)]
REAL_SCENES = [
    ("IndianPines/Indian_pines_corrected.npy", ["--gt", "IndianPines/Indian_pines_gt.mat"],
     (145, 145, 200), 10249, 16),
    ("JasperRidge/jasperRidge2_R198.mat", ["--shape", "100", "100"], (100, 100, 198), None, None),
    ("Samson/samson_1.mat", ["--shape", "95", "95"], (95, 95, 156), None, None),
    ("SanDiego/sandiego.mat", ["--key", "data", "--gt", "SanDiego/sandiego.mat", "--gt-key", "map"],
     (100, 100, 189), 58, 1),
    ("SaltonSea/salton_sea_roi.mat", ["--key", "I"], (51, 56, 224), None, None),
    ("AVIRIS_VI_demo/a_hsi_img_for_VI_demo.mat",
     ["--wavelengths", "AVIRIS_VI_demo/a_hsi_img_for_VI_demo.mat"], (90, 90, 224), None, None),
    ("Hyperion_Paris/paris_data_hs_ms.mat", ["--key", "HSim"], (72, 72, 128), None, None),
    ("Hyperion_Paris/paris_data_hs_pan.mat", ["--key", "HSim"], (72, 58, 128), None, None),
    ("Moffett/Moffett_vca.mat", ["--key", "data"], (50, 50, 189), None, None),
    ("Houston2018/houston_dataset.mat", ["--key", "hyprImg"], (128, 128, 48), None, None),
    ("ABU/abu-beach-1.mat", ["--key", "data", "--gt", "ABU/abu-beach-1.mat", "--gt-key", "map"],
     (150, 150, 188), 19, 1),
    *[(f"ABU/abu-{n}.mat", ["--key", "data", "--gt", f"ABU/abu-{n}.mat", "--gt-key", "map"],
       (100, 100, b), labelled, 1) for n, b, labelled in ABU],
]


