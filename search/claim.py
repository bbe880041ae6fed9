"""Who may use an experiment folder: one driver at a time, and only folders this user's tool made.

- **Lock.** A search or ablation run claims ``<exp>/.lock`` (``xane3.lock``) before
  anything else touches the folder, so a second driver with the same ``--name`` refuses
  instead of running into the same tables and Optuna study. A lock whose process is
  gone (a crash, kill -9) is taken over, with a message.
- **Signature.** Resuming makes Ray Tune unpickle ``tune/tuner.pkl``: a folder someone
  else wrote could run their code. A new experiment gets ``<exp>/.xane3-signature`` (mode
  0600), an HMAC (SHA-256) of the folder's absolute path and a nonce under a per-user key
  (``~/.config/xane3/key``, mode 0600); resume verifies it, and that the folder is the
  user's own and not writable by others, before Tune reads anything. A folder the user
  moved is vouched for again with ``python -m search.trust DIR``.
- **Contents.** The path signature alone vouches for whatever sits in the folder: a
  replaced ``tune/tuner.pkl`` would run on ``--resume``. So every file of ``tune/`` that
  Tune unpickles is signed too (``<exp>/.xane3-contents``: an HMAC of its path and bytes),
  each time the driver's Tune loop has written it (``table_writer.SignContents``); resume
  puts a changed file back from its signed copy and sets an unsigned one aside, so Tune
  only ever unpickles bytes this user's xane3 signed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
import sys
from pathlib import Path

from xane3 import lock

SIGNATURE = ".xane3-signature"


class UntrustedExperiment(PermissionError):
    """Resuming this folder could run code this user's tool did not write."""


# --- lock -------------------------------------------------------------------------------
def claim(exp_dir: Path) -> Path:
    """Take ``exp_dir/.lock`` for this process (released at exit); FileExistsError if held."""
    return lock.claim(exp_dir, "another search or ablation run with this --name; wait for it or "
                               "pick another name")


def _key() -> bytes:
    """The per-user key, made once: written whole under a temporary name and linked into place,
    so processes starting together never see a partial key and all keep the first one linked."""
    home = Path(os.environ.get("XANE3_CONFIG_DIR", Path.home() / ".config" / "xane3"))
    path = home / "key"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        tmp = home / f".key.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process linked its key first: that one is the key
        finally:
            tmp.unlink()
    key = path.read_text().strip()
    if not key:
        raise ValueError(f"{path}: the signing key is empty; delete it and sign your experiments again "
                         "(python -m search.trust DIR)")
    return key.encode()


def _mac(where: Path, nonce: str) -> str:
    """Bound to the folder's absolute path: a signature copied into another folder (even one
    of the same name) does not vouch for it."""
    msg = f"xane3-experiment\0{Path(where).resolve()}\0{nonce}".encode()
    return hmac.new(_key(), msg, hashlib.sha256).hexdigest()


def sign(exp_dir: Path) -> None:
    from xane3.atomic import write_text_atomic

    nonce = secrets.token_hex(16)
    path = exp_dir / SIGNATURE
    write_text_atomic(path, json.dumps({"name": exp_dir.name, "path": str(exp_dir.resolve()),
                                        "nonce": nonce, "hmac": _mac(exp_dir, nonce)}))
    path.chmod(0o600)  # nobody else need read it


def verify(exp_dir: Path) -> None:
    """Raise UntrustedExperiment unless this user's xane3 made ``exp_dir`` (checked before unpickling)."""
    why = _untrusted(exp_dir)
    if why:
        raise UntrustedExperiment(
            f"{exp_dir}: refusing to resume: {why}. Resuming unpickles the folder's Tune state, which "
            "runs code; only folders made by this user's xane3 are resumed (README, security notes). "
            f"A folder you made with xane3 and moved (or made before 2026-12-02): "
            f"python -m search.trust {exp_dir}")


CONTENTS = ".xane3-contents"
STATE_GLOBS = ("*.pkl", "experiment_state*.json", "*-state-*.json")  # what Tune unpickles on restore


def _state_files(tune_dir: Path) -> list[Path]:
    return sorted({p for g in STATE_GLOBS for p in tune_dir.glob(g) if p.is_file()})


def _file_mac(path: Path, data: bytes) -> str:
    msg = b"xane3-state\0" + str(path.resolve()).encode() + b"\0" + hashlib.sha256(data).digest()
    return hmac.new(_key(), msg, hashlib.sha256).hexdigest()


SIGNED = ".xane3-signed"  # the signed bytes themselves, to resume from when a file moved on
SET_ASIDE = ".xane3-unsigned"  # state files nobody signed: never unpickled, kept for a look


def sign_contents(exp_dir: Path, tune_dir: Path | None = None) -> None:
    """Sign every state file of ``tune_dir`` (default ``exp_dir/tune``) as it is now, keeping a
    copy of the signed bytes: a driver killed between Tune's write and this signature leaves a
    file that no longer matches, and resume then falls back to the copy."""
    from xane3.atomic import atomic_path, write_text_atomic

    tune_dir = tune_dir or exp_dir / "tune"
    macs = {}
    for p in _state_files(tune_dir):
        rel = str(p.relative_to(exp_dir))
        data = p.read_bytes()
        copy = exp_dir / SIGNED / rel
        copy.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(copy) as tmp:
            tmp.write_bytes(data)
        macs[rel] = _file_mac(p, data)
    path = exp_dir / CONTENTS
    write_text_atomic(path, json.dumps(macs, indent=1))
    path.chmod(0o600)


def _contents_untrusted(exp_dir: Path) -> str:
    """'' when every state file Tune would unpickle is one xane3 signed. A changed file is put
    back from its signed copy, an unsigned one set aside (both said); a folder with state but
    no signatures at all (made before them) needs the user's word (``search.trust``)."""
    files = _state_files(exp_dir / "tune")
    if not files:
        return ""
    try:
        macs = json.loads((exp_dir / CONTENTS).read_text())
    except (OSError, ValueError):
        return f"its Tune state has no valid {CONTENTS} (the files it would unpickle are unsigned)"
    for p in files:
        rel = str(p.relative_to(exp_dir))
        if hmac.compare_digest(str(macs.get(rel, "")), _file_mac(p, p.read_bytes())):
            continue
        copy = exp_dir / SIGNED / rel
        if rel in macs and copy.exists() and hmac.compare_digest(macs[rel], _file_mac(p, copy.read_bytes())):
            os.replace(_staged(copy, p), p)
            print(f"{rel} changed after xane3 last signed it (a driver killed while Tune saved it, or "
                  "someone else): resuming from the signed copy", file=sys.stderr)
        else:
            aside = exp_dir / SET_ASIDE / p.name
            aside.parent.mkdir(exist_ok=True)
            os.replace(p, aside)
            print(f"{rel} was never signed by xane3: set aside in {aside.parent}, never unpickled",
                  file=sys.stderr)
    return ""


def _staged(copy: Path, dest: Path) -> Path:
    """The signed bytes beside ``dest`` under a hidden name, ready to be renamed over it."""
    tmp = dest.with_name(f".{dest.name}.signed")
    tmp.write_bytes(copy.read_bytes())
    return tmp


def trust(exp_dir: Path) -> None:
    """Sign a folder the user vouches for (made before signatures): ownership still checked."""
    if not (exp_dir / "experiment.json").exists():
        raise FileNotFoundError(f"{exp_dir}: not an experiment folder (no experiment.json)")
    why = _unsafe(exp_dir)
    if why:
        raise UntrustedExperiment(f"{exp_dir}: refusing to sign: {why}")
    sign(exp_dir)
    sign_contents(exp_dir)


def _unsafe(exp_dir: Path) -> str:
    for path in (exp_dir, exp_dir / "tune", exp_dir / "tune" / "tuner.pkl"):
        if not path.exists():
            continue
        st = path.stat()
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            return f"{path} belongs to uid {st.st_uid}, not to this user"
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return f"{path} is writable by other users"
    return ""


def _untrusted(exp_dir: Path) -> str:
    if why := _unsafe(exp_dir):
        return why
    try:
        sig = json.loads((exp_dir / SIGNATURE).read_text())
        ok = hmac.compare_digest(str(sig["hmac"]), _mac(exp_dir, str(sig["nonce"])))
    except (OSError, ValueError, KeyError, TypeError):
        return f"no valid {SIGNATURE} (not created by xane3 for this user)"
    if not ok:
        return ("its signature does not match this user's key and this folder (made by "
                "someone else, or moved or copied here)")
    return _contents_untrusted(exp_dir)
