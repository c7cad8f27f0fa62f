"""`hsijax grid-pca`: fit the shared-grid PCA (`hsijax.models.linear_code`) on every scene of a
leave-out config that lists wavelengths, plus its spectral library when that folder exists, and
save it -- how the code shipped with hsijax is made:

    rm -rf hsijax/weights/shared_grid_pca && hsijax grid-pca --output hsijax/weights/shared_grid_pca

The leave-out config's scenes are all the real ones here (its validation and left-out scenes
included: a shipped code, like shipped weights, is fitted on everything). How well this recipe
reconstructs a sensor it never saw is what ``hsijax leave-out`` measures, each cell fitted without
its scene (the ``grid_pca_library`` rows of docs/leave_out).
"""

from __future__ import annotations

import sys
from pathlib import Path

from hsijax.data.loading import load_scene, scene_names
from hsijax.errors import HsijaxError
from hsijax.experiments.leave_out import linear_fit_sets
from hsijax.files import check_output, storage_path
from hsijax.models.linear_code import SharedGridPCA


def fit_grid_pca(config, output, code_width: int = 32) -> tuple[SharedGridPCA, dict]:
    """Fit the code on the config's scenes (and library); save it to the new folder ``output`` (local
    or a URI) with its record."""
    output = check_output(output, "directory")
    if storage_path(output).exists():
        raise HsijaxError(f"{output}: already exists; grid-pca saves to a new folder")
    data = config.pretrain.data
    scenes = [load_scene(name, data.data_dir, data.imports) for name in scene_names(data.scenes)]
    listed = [scene for scene in scenes if scene.wavelengths_nm is not None]
    sets = linear_fit_sets(config, listed)
    with_library = "grid_pca_library" in sets
    pca = SharedGridPCA.fit(sets["grid_pca_library" if with_library else "grid_pca"], code_width,
                            seed=config.pretrain.seed)
    record = {"scenes": [scene.name for scene in listed],
              "skipped_without_wavelengths": [scene.name for scene in scenes if scene.wavelengths_nm is None],
              "spectral_library": Path(config.spectral_library).name if with_library else None,
              "library_mixtures": config.library_mixtures if with_library else 0,
              "code_width": code_width, "seed": config.pretrain.seed}
    pca.save(output, record)
    print(f"grid-pca: fitted on {', '.join(record['scenes'])}"
          + (f" and {config.library_mixtures:,} library mixtures" if with_library else ""), file=sys.stderr)
    return pca, record
