"""``python -m xane3.predict``: the prediction command (see ``xane3.predict_cli``).

The function lives in ``xane3.inference`` and is re-exported as ``xane3.predict``;
this module only gives the command its documented name.
"""

from xane3.inference import absorber_groups, predict

__all__ = ["absorber_groups", "predict"]

if __name__ == "__main__":
    from xane3.predict_cli import main

    raise SystemExit(main())
