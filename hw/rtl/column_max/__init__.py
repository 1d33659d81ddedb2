"""Running column max (`column_max.sv`): the exit heads' row and column pooling in one pass
over the feature map, its Python model (`model.py`, the golden simulator's ColumnMax) and
its block test."""
