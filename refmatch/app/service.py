"""The facade every shell (CLI, API, UI, batch) calls. Parses nothing, renders nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from refmatch import importing
from refmatch.config import Settings
from refmatch.domain import clock, vocabulary
from refmatch.domain.errors import ConfigError, InvalidInput, NotFound
from refmatch.domain.models import DEFAULT_REFERENCE_TYPE, PURPOSES, MatchResult, Seeker
from refmatch.domain.vocabulary import IMPORT_KINDS
from refmatch.embed.backends import encoder_name, make_encoder
from refmatch.embed.base import Encoder
from refmatch.index.files import build_lock
from refmatch.index.sync import (
    INDEX_NAMES,
    BuildReport,
    IndexStatus,
    Lag,
    build_index,
    files_stamp,
    index_status,
    lag_of,
    load_fresh,
    load_snapshot,
    text_version,
)
from refmatch.match import Indexes, Rules, find_matches, load_catalog
from refmatch.match.advocate_vectors import AdvocateVectors, build_advocate_vectors, vectors_needed
from refmatch.match.catalog import Catalog, catalog_version, with_unindexed, with_usage
from refmatch.match.engine import score_pairs
from refmatch.match.scoring import weak_note
from refmatch.risk import after_import as refresh_risk
from refmatch.store import UPSERTS, data_version, open_db, transaction
from refmatch.store.repo import account_row, profile_text, weights_in_use

ProgressFactory = Callable[[str, int], Callable[[int], None]]
IMPORT_ORDER = IMPORT_KINDS


@dataclass
class ImportReport:
    kind: str
    file: str
    rows_read: int
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    dry_run: bool = False
    rejects_file: str | None = None
    mapping: str | None = None
    ignored_columns: list[str] = field(default_factory=list)

    def summary(self) -> str:
        verb = "would import" if self.dry_run else "imported"
        text = (
            f"{self.kind}: {verb} {self.rows_read} rows from {self.file}: {self.inserted} inserted, "
            f"{self.updated} updated, {self.unchanged} unchanged, {self.rejected} rejected"
        )
        if self.rejects_file:
            text += f" (rejects written to {self.rejects_file})"
        if self.mapping:
            text += f"\ncolumns mapped by {self.mapping}"
            if self.ignored_columns:
                shown = ", ".join(self.ignored_columns[:12])
                more = f" and {len(self.ignored_columns) - 12} more" if len(self.ignored_columns) > 12 else ""
                text += f"; ignored: {shown}{more}"
        return text


@dataclass
class LoadedFiles:
    """Index files loaded at one moment: the indexes, {name: (files stamp, manifest)}, their lags at
    text version ``texts``, and (from a background load) the lagged catalog and advocate vectors."""

    indexes: Indexes
    files: dict[str, tuple[tuple, dict]]
    lags: dict[str, Lag]
    texts: int | None
    prepared: tuple[Catalog, Catalog, AdvocateVectors | None] | None = None


class Service:
    def __init__(self, settings: Settings, encoder: Encoder | None = None):
        self.settings = settings
        self._encoder = encoder
        self._db = None
        self._catalog: Catalog | None = None
        self._indexes: tuple[int, Indexes, dict, dict[str, Lag]] | None = None
        self._lag_texts: int | None = None  # the text version the held lags were computed at
        self._lagged: tuple[Catalog, dict[str, Lag], Catalog] | None = None
        self._index_files: dict[str, tuple[tuple, dict]] = {}  # name -> (files stamp, manifest) of those loaded
        self._advocates: tuple[object, Indexes, AdvocateVectors | None] | None = None

    # -- plumbing ---------------------------------------------------------
    @property
    def db(self):
        if self._db is None:
            self._db = open_db(self.settings.db_path)
            if learned := weights_in_use(self._db.conn):  # refmatch weights use: the learned weights win
                self.settings = replace(self.settings, **learned)
        return self._db

    @property
    def conn(self):
        return self.db.conn

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = make_encoder(self.settings)
        return self._encoder

    @property
    def model_name(self) -> str:
        if self._encoder is not None:
            return self._encoder.name
        return encoder_name(self.settings.model, self.settings.encoder_backend, self.settings.precision)

    def close(self) -> None:
        if self._db is not None:
            self._db.conn.close()
            self._db = None

    def init(self) -> int:
        return data_version(self.db)

    # -- import -----------------------------------------------------------
    def import_file(
        self,
        kind: str,
        path: str | Path,
        *,
        dry_run: bool = False,
        skip_invalid: bool = False,
        rejects_path: str | Path | None = None,
        ignore_unknown: bool = False,
        column_map: str | None = None,
        progress: ProgressFactory | None = None,
    ) -> ImportReport:
        if kind not in UPSERTS:
            raise InvalidInput(f"unknown import kind {kind!r}: expected one of {', '.join(IMPORT_ORDER)}")
        known = None if kind == "accounts" else {r[0] for r in self.conn.execute("SELECT external_id FROM accounts")}
        result = importing.parse_file(
            path,
            kind,
            stages=self.settings.stages,
            known_accounts=known,
            ignore_unknown=ignore_unknown,
            default_capacity=None,
            column_map=column_map,
            progress=progress,
        )
        report = ImportReport(kind, str(path), result.rows_read, rejected=len(result.rejected_rows), dry_run=dry_run)
        report.mapping, report.ignored_columns = result.mapping, result.ignored_columns
        if result.errors and not skip_invalid:
            shown = "\n".join(f"  {e}" for e in result.errors[:20])
            more = f"\n  ... and {len(result.errors) - 20} more" if len(result.errors) > 20 else ""
            raise InvalidInput(
                f"{path}: {len(result.rejected_rows)} of {result.rows_read} rows are invalid; nothing was imported "
                f"(use --skip-invalid to import the valid rows)\n{shown}{more}",
                details=[e.__dict__ for e in result.errors],
            )
        if result.rejected_rows and skip_invalid:
            target = Path(rejects_path) if rejects_path else Path(str(path) + ".rejects.csv")
            importing.write_rejects(result, target)
            report.rejects_file = str(target)
        try:
            advance = progress(f"writing {kind}", len(result.records)) if progress else None
            with transaction(self.db) as conn:
                counts = UPSERTS[kind](conn, _told(result.records, advance))
                refresh_risk(conn, kind, result.records, self.settings)  # risk scores follow their inputs
                if dry_run:
                    raise _Rollback
        except _Rollback:
            pass
        report.inserted, report.updated, report.unchanged = counts.inserted, counts.updated, counts.unchanged
        self._catalog = None
        return report

    # -- indexes ----------------------------------------------------------
    def build_indexes(
        self,
        *,
        full: bool = False,
        progress: ProgressFactory | None = None,
        max_embed: int | None = None,
        encoder: Encoder | None = None,
    ) -> list[BuildReport]:
        """Embed what changed and save the indexes (one writer at a time: the build lock).

        ``max_embed``: at most this many new texts per index this time (the background indexer's
        rounds); the reports say how many remain. ``encoder``: what embeds, if not this
        service's own (a pool of workers running copies of it, say); it must go by the same name.
        """
        encoder = encoder or self.encoder
        if encoder.name != self.model_name:
            raise ConfigError(f"cannot build with model {encoder.name!r}: the service's model is {self.model_name!r}")
        reports = []
        with build_lock(self.settings.index_path):
            for name in INDEX_NAMES:
                reports.append(
                    build_index(
                        self.conn,
                        encoder,
                        self.settings.index_path,
                        name,
                        hnsw_threshold=self.settings.hnsw_threshold,
                        full=full,
                        progress=progress(name, 0) if progress else None,
                        max_embed=max_embed,
                    )
                )
        self._indexes = None
        return reports

    def pending_embeddings(self) -> dict[str, int]:
        """How many texts each index would have to embed (not in the cache)."""
        from refmatch.embed.cache import cached_vectors
        from refmatch.store.repo import indexed_texts, text_hash

        out = {}
        for name in INDEX_NAMES:
            _, texts = indexed_texts(self.conn, name)
            hashes = {text_hash(t) for t in texts}
            out[name] = len(hashes) - len(cached_vectors(self.conn, self.model_name, list(hashes)))
        return out

    def index_status(self) -> list[IndexStatus]:
        return [index_status(self.conn, self.settings.index_path, n, self.model_name) for n in INDEX_NAMES]

    def verify_indexes(self) -> list[str]:
        """Problems found by comparing every indexed vector with the embedding cache."""
        from refmatch.embed.cache import cached_vectors
        from refmatch.store.repo import indexed_texts, text_hash

        problems = [s.describe() for s in self.index_status() if not s.fresh]
        if problems:
            return problems
        for name in INDEX_NAMES:
            index, _ = load_fresh(self.conn, self.settings.index_path, name, self.model_name)
            ids, texts = indexed_texts(self.conn, name)
            hashes = [text_hash(t) for t in texts]
            cache = cached_vectors(self.conn, self.model_name, hashes)
            for start in range(0, len(ids), 4096):
                chunk = np.asarray(ids[start : start + 4096], dtype=np.int64)
                got = index.reconstruct(chunk)
                for j, account in enumerate(chunk.tolist()):
                    want = cache.get(hashes[start + j])
                    if want is None:
                        problems.append(f"{name}: id {account} has no cached embedding")
                    elif float(got[j] @ want) < 0.999:
                        problems.append(f"{name}: id {account} holds a vector that is not its text's embedding")
        return problems

    def _loaded(self) -> tuple[Catalog, Indexes, dict]:
        """The catalog as of now and the index snapshot to match against, leaving out what the snapshot lacks.

        Eligibility (consent, capacity, blackout, risk, deletions) is read from the database
        on every change; text that is new or changed since the last build is simply not in
        the snapshot yet, and accounts whose text it is are not proposed until the next build.
        """
        # every time: a build elsewhere may have replaced the files without changing the data version
        self._indexes = (data_version(self.conn), *self._snapshot())
        _, indexes, manifest, lags = self._indexes
        catalog = self.catalog()
        held = self._lagged
        if held is None or held[0] is not catalog or held[1] is not lags:
            lagged = with_unindexed(catalog, lags["profiles"].unindexed, lags["needs"].unindexed)
            self._lagged = held = (catalog, lags, lagged)
        return held[2], indexes, manifest

    def index_lag(self) -> dict[str, Lag]:
        """How far the index snapshot being served is behind the database, per index."""
        self._loaded()
        assert self._indexes is not None
        return self._indexes[3]

    def catalog(self, today: date | None = None) -> Catalog:
        """Matching's in-memory catalog of the data as of now, for ``today`` (default: the real today).

        Reloaded when the data changed; when only reference requests did (the catalog
        version, kept by triggers, is unchanged), only the slot counts are re-read.
        """
        today = today or clock.today()
        held = self._catalog
        if held is not None and held.today == today and held.data_version == data_version(self.conn):
            return held
        if held is not None and held.today == today and held.catalog_version is not None:
            if held.catalog_version == catalog_version(self.conn):
                self._catalog = with_usage(held, self.conn)
                return self._catalog
        self._catalog = load_catalog(self.conn, tuple(self.settings.stages), today)
        return self._catalog

    def _snapshot(self) -> tuple[Indexes, dict, dict[str, Lag]]:
        """The index snapshot to serve and how far behind the database it is.

        While the files are unchanged the loaded indexes are kept, and their lag is recomputed
        only when an indexed text changed (the text version); most writes (a request approved,
        a risk score) leave every text alone, and then this costs two stats and a lookup, not a
        reload of hundreds of megabytes. Files replaced by a build (here or in another process)
        are loaded, all of them at once: here at once, in a server in the background
        (``_replaced_files``), the held snapshot serving meanwhile.
        """
        path = self.settings.index_path
        held, texts = self._indexes, text_version(self.conn)
        if held is not None and any(files_stamp(path, n) != self._index_files[n][0] for n in INDEX_NAMES):
            fresh = self._replaced_files()
            if fresh is not None:
                return self._adopt(fresh, texts)
        if held is None:
            return self._adopt(self._load_files(), texts)
        lags = held[3]
        if texts is None or texts != self._lag_texts:
            lags = {n: lag_of(self.conn, n, self._index_files[n][1]) for n in INDEX_NAMES}
            self._lag_texts = texts
        return held[1], held[2], lags

    def _load_files(self) -> LoadedFiles:
        """Every index file as it is now (memory-mapped: workers share the pages) and its lag."""
        path, model, conn = self.settings.index_path, self.model_name, self.conn
        texts = text_version(conn)  # before the reads: a text changed meanwhile makes the next call recompute
        loaded, files, lags = {}, {}, {}
        for n in INDEX_NAMES:
            stamp = files_stamp(path, n)  # before the read: a save in between makes it differ next time
            loaded[n], manifest, lags[n] = load_snapshot(conn, path, n, model, mmap=True)
            files[n] = (stamp, manifest)
        return LoadedFiles(Indexes(loaded["profiles"], loaded["needs"]), files, lags, texts)

    def _replaced_files(self) -> LoadedFiles | None:
        """The index files a build replaced since they were loaded, loaded now; None keeps the held ones.

        A one-shot Service loads them at once. A server's (``SharedService``) loads them in a
        background thread and keeps serving the held snapshot until they are ready, so that no
        request waits for a reload: the held files stay mapped (a replaced file lives on until
        unmapped), and their lag is still right, as nothing is proposed that they lack.
        """
        return self._load_files()

    def _adopt(self, fresh: LoadedFiles, texts: int | None) -> tuple[Indexes, dict, dict[str, Lag]]:
        self._index_files, self._lag_texts = fresh.files, fresh.texts
        lags = fresh.lags
        if texts is None or texts != fresh.texts:
            lags = {n: lag_of(self.conn, n, fresh.files[n][1]) for n in INDEX_NAMES}
            self._lag_texts = texts
        elif fresh.prepared is not None:  # what the background load also made for these lags
            catalog, lagged, store = fresh.prepared
            self._lagged = (catalog, lags, lagged)
            self._advocates = (catalog.base, fresh.indexes, store)
        return fresh.indexes, fresh.files["profiles"][1], lags

    # -- matching ---------------------------------------------------------
    def _rules(self, purpose: str, reference_type: str | None, product: str | None) -> Rules:
        if purpose not in PURPOSES:
            raise InvalidInput(f"purpose: must be one of {', '.join(PURPOSES)}, got {purpose!r}")
        ref_type = reference_type or DEFAULT_REFERENCE_TYPE[purpose]
        if ref_type not in vocabulary.REFERENCE_TYPES:
            raise InvalidInput(
                f"reference_type: must be one of {', '.join(vocabulary.REFERENCE_TYPES)}, got {ref_type!r}"
            )
        return Rules(purpose, ref_type, self.settings.default_capacity, self.settings.min_health, product)

    def _fits(self, purpose: str, stage: str, who: str) -> None:
        """Mentors and retention peers are for customers: a prospect asking for one is told what to ask for."""
        if purpose in ("mentor", "retention") and stage == self.settings.stages[0]:
            needed = "in onboarding" if purpose == "mentor" else "at risk"
            message = (f"purpose: {purpose} is for customers {needed}; {who} is a {stage}: "
                       "ask for a reference (purpose reference)")  # fmt: skip
            raise InvalidInput(message, details=[{"field": "purpose", "message": message.split(": ", 1)[1]}])

    def _k(self, k: int | None) -> int:
        k = self.settings.k if k is None else k
        if not 1 <= k <= 100:
            raise InvalidInput(f"k: must be between 1 and 100, got {k}")
        return k

    def match_account(
        self,
        external_id: str,
        *,
        purpose: str = "reference",
        k: int | None = None,
        reference_type: str | None = None,
        product: str | None = None,
    ) -> MatchResult:
        rules, k = self._rules(purpose, reference_type, product), self._k(k)
        row = account_row(self.conn, external_id)
        if row is None:
            raise NotFound(f"unknown account: {external_id!r}")
        self._fits(purpose, row["stage"], row["external_id"])
        catalog, indexes, manifest = self._loaded()
        seeker = self._stored_seeker(row, catalog, indexes)
        return self._match(catalog, indexes, manifest, seeker, rules, k)

    def _stored_seeker(self, row: dict[str, Any], catalog: Catalog, indexes: Indexes) -> Seeker:
        """A stored account as a seeker: its profile and open needs with their current vectors."""
        open_ids = catalog.open_needs_of(row["id"])
        need_texts = [catalog.need_text[i] for i in open_ids]
        profile = profile_text(row["name"], row["industry"], row["profile"])
        vectors = self._current_vectors(indexes, [row["id"]], [profile], open_ids, need_texts)
        return Seeker(
            name=row["name"],
            stage=row["stage"],
            profile_vector=vectors[0],
            need_texts=need_texts,
            need_vectors=vectors[1:] if open_ids else None,
            account_id=row["id"],
            external_id=row["external_id"],
            industry=row["industry"],
            employees=row["employees"],
            country=row["country"],
            region=row["region"],
            products=row["products"],
            do_not_match=row["do_not_match"],
        )

    def pair_components(
        self, seeker_external_id: str, advocate_account_ids: Sequence[int], purpose: str = "reference"
    ) -> dict[int, dict[str, float]]:
        """Advocate account id -> the score components matching computes for it against this seeker now
        (eligible or not): what ``refmatch weights fit`` learns from."""
        row = account_row(self.conn, seeker_external_id)
        if row is None:
            raise NotFound(f"unknown account: {seeker_external_id!r}")
        catalog, indexes, _ = self._loaded()
        wanted = np.asarray(advocate_account_ids, dtype=np.int64)
        known = wanted[np.isin(wanted, catalog.ids)]  # accounts removed since the request are left out
        if not len(known):
            return {}
        seeker = self._stored_seeker(row, catalog, indexes)
        cands = score_pairs(catalog, indexes, seeker, known, self._rules(purpose, None, None), self.settings)
        ids = catalog.ids[cands.rows].tolist()
        return {a: {c: float(v[i]) for c, v in cands.components.items()} for i, a in enumerate(ids)}

    def _current_vectors(
        self, indexes: Indexes, profile_ids: list[int], profiles: list[str], need_ids: list[int], needs: list[str]
    ) -> np.ndarray:
        """Vectors of these rows' current texts, profiles first: from the index snapshot where it holds
        them, else from the embedding cache, else embedded now (a seeker imported a moment ago gets
        matches at once; one text costs tens of milliseconds). Writes nothing."""
        from refmatch.embed.cache import cached_vectors
        from refmatch.store.repo import text_hash

        assert self._indexes is not None
        lags = self._indexes[3]
        out = np.zeros((len(profiles) + len(needs), indexes.profiles.dim), dtype=np.float32)
        todo: list[int] = []
        for at, (name, ids) in enumerate((("profiles", profile_ids), ("needs", need_ids))):
            if not ids:
                continue
            first = 0 if at == 0 else len(profiles)
            index = indexes.profiles if name == "profiles" else indexes.needs
            held = lags[name].holds_current(np.asarray(ids, dtype=np.int64))
            if held.any():
                out[first + np.flatnonzero(held)] = index.reconstruct(np.asarray(ids, dtype=np.int64)[held])
            todo.extend((first + np.flatnonzero(~held)).tolist())
        if todo:
            texts = [(profiles + needs)[i] for i in todo]
            hashes = [text_hash(t) for t in texts]
            cached = cached_vectors(self.conn, self.model_name, hashes)
            fresh = [i for i, h in zip(todo, hashes) if h not in cached]
            for i, h in zip(todo, hashes):
                if h in cached:
                    out[i] = cached[h]
            if fresh:
                out[fresh] = self.encoder.encode([(profiles + needs)[i] for i in fresh])
        return out

    def match_text(
        self,
        text: str,
        *,
        needs: Sequence[str] = (),
        name: str = "ad-hoc prospect",
        industry: str | None = None,
        employees: int | None = None,
        country: str | None = None,
        region: str | None = None,
        products: Sequence[str] = (),
        stage: str | None = None,
        do_not_match: Sequence[str] = (),
        purpose: str = "reference",
        k: int | None = None,
        reference_type: str | None = None,
        product: str | None = None,
    ) -> MatchResult:
        """Match a seeker that is not in the database, described in free text."""
        rules, k = self._rules(purpose, reference_type, product), self._k(k)
        if not text or not text.strip():
            raise InvalidInput("text: must not be empty: describe the prospect")
        empty = [i for i, n in enumerate(needs) if not n or not n.strip()]
        if empty:
            raise InvalidInput(
                f"needs[{empty[0]}]: must not be empty: state the need, or leave it out",
                details=[{"field": f"needs[{i}]", "message": "must not be empty"} for i in empty],
            )
        needs = [n.strip() for n in needs]
        stage = stage or self.settings.stages[0]
        if stage not in self.settings.stages:
            raise InvalidInput(f"stage: must be one of {', '.join(self.settings.stages)}, got {stage!r}")
        self._fits(purpose, stage, "the seeker")
        if employees is not None and employees < 0:
            raise InvalidInput(f"employees: must be >= 0, got {employees}")
        catalog, indexes, manifest = self._loaded()
        vectors = self.encoder.encode([profile_text(name, industry, text), *needs])
        seeker = Seeker(
            name=name,
            stage=stage,
            profile_vector=vectors[0],
            need_texts=needs,
            need_vectors=vectors[1:] if needs else None,
            industry=industry,
            employees=employees,
            country=country,
            region=region,
            products=list(products),
            do_not_match=list(do_not_match),
        )
        return self._match(catalog, indexes, manifest, seeker, rules, k)

    def advocate_vectors(self, catalog: Catalog, indexes: Indexes) -> AdvocateVectors | None:
        """The standing advocates' vectors for this catalog and these indexes (built once for the pair), or
        None when they number more than ``advocate_vectors_max``."""
        held = self._advocates
        if held is not None and held[0] is catalog.base and held[1] is indexes:  # slot counts do not matter
            return held[2]
        store = self._vectors_for(catalog, indexes)
        self._advocates = (catalog.base, indexes, store)  # a racing thread builds its own: no lock needed
        return store

    def _vectors_for(self, catalog: Catalog, indexes: Indexes) -> AdvocateVectors | None:
        min_health = self.settings.min_health
        if vectors_needed(catalog, min_health) > self.settings.advocate_vectors_max:
            return None
        return build_advocate_vectors(catalog, indexes.profiles, indexes.needs, min_health=min_health)

    def _match(self, catalog, indexes, manifest, seeker, rules, k) -> MatchResult:
        store = self.advocate_vectors(catalog, indexes)
        matches, eligible = find_matches(catalog, indexes, seeker, rules, self.settings, k, store)
        index_info = {"built_at": manifest.get("built_at"), "data_version": manifest.get("data_version")}
        note = weak_note(catalog, seeker, matches, eligible, rules.product, self.settings)
        return MatchResult(seeker, rules.purpose, matches, self.model_name, index_info, eligible, note)


def _told(records: list[dict[str, Any]], advance: Callable[[int], None] | None) -> Iterator[dict[str, Any]]:
    """The records, telling ``advance`` of each 1,000 taken (a progress bar)."""
    for i, record in enumerate(records, 1):
        if advance is not None and i % 1000 == 0:
            advance(1000)
        yield record
    if advance is not None and len(records) % 1000:
        advance(len(records) % 1000)


class _Rollback(Exception):
    """Raised inside a transaction to undo a dry run."""


def reset_files(settings: Settings) -> str:
    """Start afresh (the demo's --fresh): the database emptied but for its embedding cache, the index files
    removed. What was reset, in words."""
    from refmatch.store.db import reset_keeping_embeddings

    removed, kept = reset_keeping_embeddings(settings.db_path)
    if settings.index_path.exists():
        for name in INDEX_NAMES:
            for f in settings.index_path.glob(f"{name}.*"):
                f.unlink()
    if not removed and not kept:
        return f"new database: {settings.db_path}"
    listed = ", ".join(f"{n:,} {what}" for what, n in removed.items())
    return f"reset {settings.db_path} ({listed}) and the index files; kept {kept:,} cached embeddings"
