"""Installed into the ModelOpt test venvs only (tests/quantize/venvs.py), never into a product environment.

ModelOpt 0.31-0.33 import private ``torch.onnx`` modules (for its ONNX export, which the quantize driver does
not use) that torch 2.10+ moved under ``torch.onnx._internal.torchscript_exporter``. The containers pair
those ModelOpt versions with torch 2.7-2.8, where the old names exist; the test venvs reuse the host's CPU
torch 2.13, so this maps each old name to the same torch module at its new place (no code of its own).
"""

import importlib
import importlib.abc
import importlib.util
import sys

NEW_HOME = "torch.onnx._internal.torchscript_exporter"
MOVED = {
    "torch.onnx._type_utils": f"{NEW_HOME}._type_utils",
    "torch.onnx._globals": f"{NEW_HOME}._globals",
    "torch.onnx._internal.jit_utils": f"{NEW_HOME}.jit_utils",
    "torch.onnx.symbolic_opset14": f"{NEW_HOME}.symbolic_opset14",  # private helpers are not re-exported
}


class _MovedTorchOnnxModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name not in MOVED or importlib.util.find_spec(MOVED[name].rsplit(".", 1)[0]) is None:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, _MovedTorchOnnxModules())
