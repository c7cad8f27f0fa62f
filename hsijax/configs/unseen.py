"""The `local` scenes minus three sensors kept unseen (SAMSON, Houston 2018 CASI, EO-1 Hyperion),
for reconstruction of scenes that pretraining never saw, at code widths 8, 16 and 32:

    for c in 8 16 32; do
      hsijax pretrain --config hsijax/configs/unseen.py --workdir runs/unseen_c$c --config.model.code_width=$c
      for scene in samson houston2018 paris_hyperion; do
        hsijax reconstruct --checkpoint runs/unseen_c$c --dataset $scene --out runs/unseen_c$c/$scene
      done
    done

(the three unseen scenes are imported by `hsijax pretrain --config hsijax/configs/local.py` or by
the `hsijax import` commands in local.py).
"""

from hsijax.configs import local

UNSEEN = ("samson", "houston2018", "paris_hyperion")


def get_config():
    config = local.get_config()
    config.data.scenes = ",".join(s for s in config.data.scenes.split(",") if s not in UNSEEN)
    config.train.steps = 1500
    config.train.eval_every = 500
    return config
