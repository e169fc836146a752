"""What ``veil scan --action`` does with each result: log it, quarantine or blur it, audit it."""

from __future__ import annotations

from dataclasses import dataclass

from agent.actions.blur import BlurError, blurred
from agent.audit import AuditLog
from agent.policy import Profile
from agent.scan import ScanResult
from agent.scan_output import scan_record
from agent.vault import Vault, VaultError


@dataclass
class ScanActions:
    action: str  # "none" | "log" | "quarantine" | "blur"
    audit: AuditLog | None
    vault: Vault | None
    profile: Profile
    model: str
    log_benign: bool = False

    def apply(self, result: ScanResult) -> str | None:
        """Act on one result; returns a one-line warning when a flagged file could not be moved."""
        if self.audit is None:
            return None
        if result.flagged and self.action in ("quarantine", "blur"):
            assert self.vault is not None and result.decision is not None  # the CLI opens the vault for these actions
            try:
                sealed = self.vault.quarantine(
                    result.path,
                    {"malign": result.decision.malign, "profile": self.profile.name, "action": self.action},
                    stand_in=blurred if self.action == "blur" else None,
                )
            except (VaultError, BlurError) as err:
                self.audit.append(scan_record(result, self.profile, self.model, "none", f"{self.action} failed: {err}", error=True))
                return f"{result.path}: not {'blurred' if self.action == 'blur' else 'quarantined'}: {err}"
            self.audit.append(scan_record(result, self.profile, self.model, self.action, f"vault entry {sealed.id}", sha256=sealed.sha256))
        elif result.flagged or result.prediction == "error" or self.log_benign:
            self.audit.append(scan_record(result, self.profile, self.model))
        return None
