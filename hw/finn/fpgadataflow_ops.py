"""finn-plus's HW op dictionary (`finn.custom_op.fpgadataflow.custom_op`, the same object)
with our ColumnMax added: qonnx resolves that domain here once `hw` is imported."""
from finn.custom_op.fpgadataflow import custom_op

from hw.finn.column_max_op import register

register()

__all__ = ["custom_op"]  # what qonnx reads
