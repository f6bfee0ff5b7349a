#!/usr/bin/env python3
"""How many at-risk accounts are proposed a peer who overcame the same troubles (peer saves that fit).

    python scripts/eval_peer_saves.py --db demo.db --index-dir indexes [-k 3]

For every account at risk (the stored risk scores), retention matching proposes k peers;
the script counts the peers whose recorded recoveries share at least one of the account's
troubles now, the accounts with at least one such peer, and those whose first peer is one.
``--score-order`` ranks by score alone, as retention did before peers who overcame the same
trouble came first, for comparison on the same data. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from refmatch.app import risk as risk_service  # noqa: E402
from refmatch.app.service import Service  # noqa: E402
from refmatch.config import load_settings  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--index-dir", required=True)
    parser.add_argument("-k", type=int, default=3)
    parser.add_argument("--score-order", action="store_true", help="rank by score alone (the old order)")
    args = parser.parse_args(argv)
    if args.score_order:
        from refmatch.match import batch_retrieval, engine

        for module in (engine, batch_retrieval):
            module.ranking = lambda cands: cands.scores  # type: ignore[attr-defined]
    service = Service(load_settings({"db": args.db, "index_dir": args.index_dir}))
    risk_service.ensure_current(service)
    listing = risk_service.risk_list(service, level=None, limit=100_000)
    accounts = [a for a in listing.accounts if a.stage != service.settings.stages[0]]
    peers = fitting = with_one = first = with_troubles = 0
    for account in accounts:
        matches = service.match_account(account.external_id, purpose="retention", k=args.k).matches
        overcame = [m.components.get("shared_troubles", 0) > 0 for m in matches]
        with_troubles += bool(account.troubles)
        peers += len(matches)
        fitting += sum(overcame)
        with_one += any(overcame)
        first += bool(overcame and overcame[0])
    print(json.dumps({
        "order": "score" if args.score_order else "overcame first", "k": args.k, "at_risk": len(accounts),
        "with_troubles": with_troubles, "peers": peers, "peers_who_overcame_the_same": fitting,
        "accounts_with_such_a_peer": with_one, "accounts_whose_first_peer_did": first,
        "share_of_accounts": round(with_one / len(accounts), 3) if accounts else None,
    }))  # fmt: skip
    service.close()


if __name__ == "__main__":
    main()
