"""``python -m xane3.predict``: the prediction command (see ``xane3.predict_cli``).

The function lives in ``xane3.inference`` and is re-exported as ``xane3.predict``. Importing
this module would replace that attribute with the module (Python binds a submodule on its
package), so ``from xane3 import predict`` would return something uncallable; the module
is therefore made callable as the function itself, whichever of the two a user gets.
"""

import sys
import types

from xane3.inference import absorber_groups, predict

__all__ = ["absorber_groups", "predict"]


class _CallablePredict(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return predict(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePredict

if __name__ == "__main__":
    from xane3.predict_cli import main

    raise SystemExit(main())
