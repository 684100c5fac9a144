"""Dev-time tools for alphacut: the model build, the TFLite converter. Never shipped in a layer."""
