"""Streaming global sum pool of ours (FINN's GlobalAccPool has HLS only): `global_acc_pool.sv`,
its Python model (`model.py`, the golden simulator's GlobalAccPool) and its block test."""
