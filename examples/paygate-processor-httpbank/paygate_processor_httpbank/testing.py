"""Helpers for tests that need a real Httpbank: start the bank in its own process, stop it."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

ACCOUNT = ("acct_test", "hb_key_test_0001", "hb_whsec_test_0001")
OTHER_ACCOUNT = ("acct_other", "hb_key_other_0002", "hb_whsec_other_0002")


@dataclass
class RunningBank:
    process: subprocess.Popen
    url: str
    log: Path

    def config(self, account: tuple[str, str, str] = ACCOUNT) -> dict[str, str]:
        """A merchant's httpbank settings for ``account`` at this bank."""
        return {"base_url": self.url, "api_key": account[1], "signing_secret": account[2]}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()


def start_bank(
    directory: Path,
    *extra: str,
    accounts: tuple[tuple[str, str, str], ...] = (ACCOUNT, OTHER_ACCOUNT),
    host: str = "127.0.0.1",
) -> RunningBank:
    """``python -m paygate_processor_httpbank.bank`` on a free port, its stderr (the bank's
    log) in ``directory/bank.log``; waits until it answers."""
    log = directory / "bank.log"
    args = [f"--account={':'.join(a)}" for a in accounts]
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "paygate_processor_httpbank.bank", "--host", host,
             "--port", "0", *args, *extra],
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
        )  # fmt: skip
    line = process.stdout.readline()
    if not line.startswith("httpbank listening on "):
        process.kill()
        raise RuntimeError(f"httpbank did not start: {line!r} (see {log})")
    bank = RunningBank(process, line.split()[-1], log)
    requests.get(bank.url + "/health", timeout=5).raise_for_status()
    return bank
