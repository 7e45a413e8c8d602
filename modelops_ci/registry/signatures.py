"""Signatures on tag objects: the one splitter of a tag into what was signed and its signature
(git's way), and the one wrapper of ssh-keygen and gpg. verify judges signatures with these,
audit reads them, signing checks that a tag it made carries one.

Both tools run with a clean environment (no GIT_*/GNUPGHOME leaking in from the caller) and a
missing tool is a user error naming what to install. Decisions rest on exit status and gpg's
machine-readable status lines, never on their prose.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from modelops_ci import git
from modelops_ci.errors import UserError

SSH_BEGIN = b"-----BEGIN SSH SIGNATURE-----"
PGP_BEGIN = (b"-----BEGIN PGP SIGNATURE-----", b"-----BEGIN PGP MESSAGE-----")
X509_BEGIN = b"-----BEGIN SIGNED MESSAGE-----"
GPG_BASE = ("--batch", "--no-tty", "--no-autostart")


@dataclass(frozen=True)
class TagObject:
    """An annotated tag object split the way git splits it for signature checks."""

    object: str
    type: str
    tag: str
    payload: bytes  # what was signed: the object up to the signature
    signature: bytes
    message: str

    @classmethod
    def parse(cls, raw: bytes) -> TagObject:
        head, _, _ = raw.partition(b"\n\n")
        headers = dict(line.split(b" ", 1) for line in head.split(b"\n") if b" " in line)
        start = _signature_start(raw, len(head))
        return cls(
            object=headers.get(b"object", b"").decode(), type=headers.get(b"type", b"").decode(),
            tag=headers.get(b"tag", b"").decode(errors="replace"), payload=raw[:start],
            signature=raw[start:], message=raw[len(head) + 2:start].decode(errors="replace"))

    @property
    def is_ssh(self) -> bool:
        return self.signature.startswith(SSH_BEGIN)

    @property
    def is_openpgp(self) -> bool:
        return self.signature.startswith(PGP_BEGIN)


def _signature_start(raw: bytes, body: int) -> int:
    """Offset of the last line opening a signature, as git's parse_signed_buffer finds it."""
    found, at = len(raw), body
    while at < len(raw):
        if raw.startswith((SSH_BEGIN, *PGP_BEGIN, X509_BEGIN), at):
            found = at
        newline = raw.find(b"\n", at)
        at = len(raw) if newline < 0 else newline + 1
    return found


def ssh_keygen(action: str, *args: str, stdin: bytes | None = None,
               verify_time: str | None = None) -> subprocess.CompletedProcess[bytes]:
    """`ssh-keygen -Y action args...`; `verify_time` (YYYYMMDDHHMMSSZ) judges key validity at that
    time instead of the one git would pass, the tagger date the signer wrote."""
    command = ["ssh-keygen", "-Y", action, *args]
    if verify_time is not None:
        command.append(f"-Overify-time={verify_time}")
    return _run(command, stdin)


def gpg(home: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """gpg on the keyring in `home` only, never the user's, without prompts or an agent."""
    return _run(["gpg", "--homedir", str(home), *GPG_BASE, *args], None)


def gpg_status(stdout: bytes) -> dict[str, list[str]]:
    """gpg's --status-fd lines as {keyword: arguments} (the machine interface, not its prose)."""
    status: dict[str, list[str]] = {}
    for line in stdout.decode(errors="replace").splitlines():
        if line.startswith("[GNUPG:] "):
            keyword, *arguments = line[9:].split()
            status.setdefault(keyword, arguments)
    return status


def primary_fingerprints(colons: str) -> list[str]:
    """Primary-key fingerprints in `gpg --with-colons` output (the fpr line after each pub)."""
    found, after_pub = [], False
    for line in colons.splitlines():
        record = line.split(":")
        if record[0] == "pub":
            after_pub = True
        elif record[0] == "fpr" and after_pub:
            found.append(record[9])
            after_pub = False
    return found


def _run(command: list[str], stdin: bytes | None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(command, input=stdin, capture_output=True, env=git.clean_env(), check=False)
    except FileNotFoundError:
        raise UserError(f"{command[0]} not found: install it (OpenSSH for SSH signatures, GnuPG for GPG) "
                        "to verify tags") from None
