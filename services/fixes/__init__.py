"""Fixes in QuickBooks, proposed by one person and approved by another (issue 17)."""

from services.fixes.apply import Decision, FixResult, FixService
from services.fixes.owed import FOLLOWUP_CAUSES, prepare_followup_fix, prepare_for
from services.fixes.prepare import Fix, FixKind, NoFix, changed_since, prepare_fix
from services.fixes.records import AlreadyProposed, FixRecords, Proposal, ProposalState

__all__ = [
    "FOLLOWUP_CAUSES",
    "AlreadyProposed",
    "Decision",
    "Fix",
    "FixKind",
    "FixRecords",
    "FixResult",
    "FixService",
    "NoFix",
    "Proposal",
    "ProposalState",
    "changed_since",
    "prepare_fix",
    "prepare_followup_fix",
    "prepare_for",
]
