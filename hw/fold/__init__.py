"""Exit-aware folding: how fast the multi-exit pipeline runs (`pipeline`, a cycle model that
replays a sequence of images with finite buffers) and how to fold its segments for a
resource budget (`search`)."""
