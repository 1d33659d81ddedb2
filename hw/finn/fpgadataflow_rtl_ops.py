"""finn-plus's RTL op dictionary (`finn.custom_op.fpgadataflow.rtl.custom_op`, the same
object) with our ColumnMax_rtl added: qonnx resolves that domain here once `hw` is imported."""
from finn.custom_op.fpgadataflow.rtl import custom_op

from hw.finn.column_max_op import register

register()

__all__ = ["custom_op"]  # what qonnx reads
