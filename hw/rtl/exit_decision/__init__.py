"""The exit decision unit of ours: `exit_decision.sv`, its Python model (`model.py`), its
block test (`test_exit_decision.py`) on real head logits of the default run."""
