"""Hardware side: QONNX export, FINN conversion, integer golden simulation, RTL, builds.

Importing `hw` points qonnx's op lookup for finn-plus's HW domains at two modules of ours
(`hw.finn.fpgadataflow_ops`, `hw.finn.fpgadataflow_rtl_ops`) that hold finn-plus's op
dictionaries with our ColumnMax layer added, so any process that has imported `hw` can
execute the `dataflow` step's graphs with qonnx or FINN (FINN is imported only on the
first lookup). FINN's own transformations read its dictionaries directly: the conversion,
the estimate build and the RTL generator register the op first (`column_max_op.register`).
"""
from qonnx.custom_op.registry import add_domain_alias

add_domain_alias("finn.custom_op.fpgadataflow", "hw.finn.fpgadataflow_ops")
add_domain_alias("finn.custom_op.fpgadataflow.rtl", "hw.finn.fpgadataflow_rtl_ops")
