"""The slice classifier. In: the config's ``model`` section and the number of input channels. Out:
the reduced ResNet18 (``resnet``, torchvision parameter names), built from config in one place
(``factory``), the mrparotid checkpoint format (``checkpoint``, loaded with ``weights_only=True``),
and the thin Lightning wrapper that trains it (``lit_module``)."""
