"""Hardware side: QONNX export, FINN conversion, integer golden simulation, RTL, builds."""
