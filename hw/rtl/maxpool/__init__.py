"""Streaming max pool of ours (FINN's Pool has no RTL variant): `maxpool.sv`, its Python
model (`model.py`), and its block test (`test_maxpool.py`)."""
