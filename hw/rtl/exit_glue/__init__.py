"""The exit glue of the multi-exit design: `fork.sv` (one stream to two), `exit_buffer.sv`
(a segment's output held until its head decides, then forwarded or dropped) and
`exit_merge.sv` ((class, exit index) per image, in input order), `queue.sv` (decisions
waiting for the merge); their Python model
(`model.py`, the golden cascade's routing) and block test (`test_exit_glue.py`)."""
