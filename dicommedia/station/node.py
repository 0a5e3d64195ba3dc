"""The media node: receives into the spool, decides when a group becomes a disc, builds it, catalogues it."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dicommedia.catalog import Catalog, open_catalog
from dicommedia.create import CreateOptions
from dicommedia.profile import load_profile
from dicommedia.station import grouping
from dicommedia.station.builder import build_disc, output_path
from dicommedia.station.mcm import (
    CREATING,
    DONE,
    FAILURE,
    PENDING,
    REASON_NO_SUCH_INSTANCE,
    REASON_PROCESSING_FAILURE,
    MediaRequest,
    MediaRequests,
)
from dicommedia.station.spool import SUFFIX, Claimed, Spool, write_durably

if TYPE_CHECKING:
    import ssl

STATUS_FILE = "status.json"


@dataclass
class NodeConfig:
    """How the node listens, groups and writes."""

    host: str
    port: int
    aet: str
    output: Path
    spool: Path
    catalog: str
    template: CreateOptions
    idle: float = 60.0
    grouping: str = "study"
    ssl_context: ssl.SSLContext | None = None
    log: TextIO = field(default_factory=lambda: sys.stderr)


@dataclass
class _Association:
    calling_aet: str
    peer: str
    started: float
    name: str
    groups: set[str] = field(default_factory=set)
    instances: int = 0


def _profile_exists(name: str) -> bool:
    try:
        load_profile(name)
    except Exception:
        return False
    return True


def _request_group(uid: str) -> str:
    """The spool folder name of a media creation request's instances."""
    return "r-" + hashlib.sha1(uid.encode()).hexdigest()[:20]


def read_status(spool: Path) -> dict[str, Any]:
    """The status a node last wrote, with ``running`` telling whether its process still lives."""
    try:
        status = json.loads((spool / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"running": False, "spool": str(spool)}
    try:
        os.kill(int(status.get("pid", 0)), 0)
        status["running"] = bool(status.get("pid")) and not status.get("stopped")
    except (OSError, ValueError):
        status["running"] = False
    return status


class MediaNode:
    """One running node: the SCP's handlers call ``store``; a builder thread makes the discs."""

    def __init__(self, config: NodeConfig):
        from dicommedia.station.scp import StationSCP

        self.config = config
        self.spool = Spool(config.spool)
        self.catalog: Catalog = open_catalog(config.catalog)
        self.requests = MediaRequests(
            self._sop_class_of, _profile_exists, self._queue_request, config.spool / "requests"
        )
        self.scp = StationSCP(self)
        self._lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._associations: dict[int, _Association] = {}
        self._activity = {g: t for g, t in self.spool.pending().items()}
        self._jobs: queue.Queue[Claimed | MediaRequest] = queue.Queue()
        self._stop = threading.Event()
        self._builder = threading.Thread(target=self._build_loop, name="disc-builder", daemon=True)
        self._counter = 0
        self._assoc_counter = 0
        self.counts = {"received": 0, "discs": 0, "refused": 0, "associations": 0}
        self._building: str | None = None
        self._last_disc: dict[str, Any] | None = None
        self._started = _dt.datetime.now(_dt.UTC).isoformat()

    # --- operations -----------------------------------------------------------------------------------
    def log(self, event: str, **fields: Any) -> None:
        """One structured log line (JSON) per association, study, disc or incident."""
        line = {"time": _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds"), "event": event, **fields}
        with self._log_lock:
            self.config.log.write(json.dumps(line, ensure_ascii=False) + "\n")
            self.config.log.flush()

    def status(self) -> dict[str, Any]:
        """What the node is doing, as ``serve --status --json`` shows it."""
        with self._lock:
            open_assocs = len(self._associations)
            pending = dict(self._activity)
        return {
            "pid": os.getpid(),
            "aet": self.config.aet,
            "host": self.config.host,
            "port": self.config.port,
            "output": str(self.config.output),
            "spool": str(self.config.spool),
            "started": self._started,
            "updated": _dt.datetime.now(_dt.UTC).isoformat(),
            "stopped": self._stop.is_set(),
            "open_associations": open_assocs,
            "pending_groups": len(pending),
            "pending_instances": sum(1 for g in pending for _ in (self.spool.incoming / g).glob("*.dcm")),
            "building": self._building,
            "refused_groups": sum(1 for _ in self.spool.refused.iterdir()),
            "media_requests": {uid: r.status for uid, r in list(self.requests.requests.items())},
            "last_disc": self._last_disc,
            **self.counts,
        }

    def _write_status(self) -> None:
        temp = self.config.spool / f".{STATUS_FILE}.tmp"
        temp.write_text(json.dumps(self.status(), indent=2), encoding="utf-8")
        os.replace(temp, self.config.spool / STATUS_FILE)

    # --- receiving --------------------------------------------------------------------------------------
    def association_started(self, assoc: object, calling_aet: str, peer: str) -> None:
        """An association was accepted."""
        with self._lock:
            self.counts["associations"] += 1
            name = grouping.association_id(self.counts["associations"])
            self._associations[id(assoc)] = _Association(calling_aet, peer, time.monotonic(), name)

    def association_ended(self, assoc: object, how: str) -> None:
        """An association was released or aborted: log it; its groups may now become due."""
        with self._lock:
            record = self._associations.pop(id(assoc), None)
            if record is not None:
                for group in record.groups:  # the idle clock of an association group starts now
                    if group in self._activity:
                        self._activity[group] = time.time()
        if record is not None:
            self.log(
                "association",
                calling_aet=record.calling_aet,
                peer=record.peer,
                end=how,
                instances=record.instances,
                seconds=round(time.monotonic() - record.started, 3),
            )

    def _association_name(self, assoc: object) -> str:
        record = self._associations.get(id(assoc))
        return record.name if record is not None else grouping.association_id(0)

    def store(self, assoc: object, uid: str, encoded: bytes, study: str | None, patient: str | None) -> None:
        """Spool one instance durably (fsync'd) in its group; return only when it is safe to acknowledge."""
        temp = self.spool.temp_path(uid)
        write_durably(temp, encoded)
        self.adopt(assoc, uid, temp, study, patient)

    def adopt(self, assoc: object, uid: str, temp: Path, study: str | None, patient: str | None) -> None:
        """Move an fsync'd instance from the spool's tmp/ into its group, durably."""
        group = self.group_of(assoc, study, patient)
        self.spool.adopt(group, uid, temp)
        with self._lock:
            self._activity[group] = time.time()
        self.journaled(assoc, group)

    def group_of(self, assoc: object, study: str | None, patient: str | None) -> str:
        """The spool group of an instance received on ``assoc``."""
        with self._lock:
            return grouping.group_key(self.config.grouping, study, patient, self._association_name(assoc))

    def journaled(self, assoc: object, group: str) -> None:
        """Count an instance stored durably for ``assoc``; its group is not claimed while ``assoc`` is open."""
        with self._lock:
            self.counts["received"] += 1
            record = self._associations.get(id(assoc))
            if record is not None:
                record.instances += 1
                record.groups.add(group)

    def drain(self, journal: Path) -> None:
        """An association's journal into its groups' folders (before the association counts as ended)."""
        try:
            landed = self.spool.drain(journal)
        except OSError as exc:  # the journal stays: the next start drains it
            self.log("error", where="drain", journal=str(journal), error=f"{type(exc).__name__}: {exc}")
            return
        with self._lock:
            now = time.time()
            for group in landed:
                self._activity[group] = now

    def _sop_class_of(self, uid: str) -> str | None:
        from pydicom.filereader import read_file_meta_info

        path = self.spool.find(uid)
        if path is None:
            return None
        try:
            return str(read_file_meta_info(path).MediaStorageSOPClassUID)
        except Exception:
            return None

    # --- building ---------------------------------------------------------------------------------------
    def _new_fileset_id(self) -> str:
        while True:
            self._counter += 1
            candidate = grouping.fileset_id(self._counter)
            taken = output_path(self.config.output, candidate, self.config.template.output_format).exists() or any(
                self.spool.building.glob(f"{candidate}__*")
            )
            if not taken:
                return candidate

    def _queue_request(self, request: MediaRequest) -> None:
        self._jobs.put(request)

    def _due(self) -> list[str]:
        with self._lock:
            # a group an open association still sends to waits: its disc gets all of it (and no journal record
            # of it is drained after the disc was made, station/spool.py)
            open_groups = {g for a in self._associations.values() for g in a.groups}
            return grouping.due_groups(
                dict(self._activity), time.time(), self.config.idle, open_groups, self.config.grouping
            )

    def _build(self, claimed: Claimed, request: MediaRequest | None = None) -> None:
        started = time.monotonic()
        self._building = claimed.fileset_id
        self.log(
            "study", group=claimed.group, fileset_id=claimed.fileset_id, instances=len(list(claimed.folder.iterdir()))
        )
        template = self.config.template
        if request is not None and request.profile:  # Requested Media Application Profile (2200,000C)
            template = dataclasses.replace(template, profile=load_profile(request.profile))
        outcome = build_disc(claimed, self.spool, template)
        for path, reason in outcome.refused:
            self.counts["refused"] += 1
            self.log("refused", group=claimed.group, file=Path(path).name, reason=reason, kept=str(self.spool.refused))
        for entry in outcome.volumes:
            self.catalog.record(entry)
            self.counts["discs"] += 1
            self._last_disc = {"path": entry.path, "fileset_id": entry.fileset_id}
            self.log(
                "disc",
                path=entry.path,
                fileset_id=entry.fileset_id,
                instances=sum(s.instances for s in entry.studies),
                studies=[s.study_instance_uid for s in entry.studies],
                bytes=entry.bytes,
                seconds=round(time.monotonic() - started, 3),
            )
        self.spool.finish(claimed)
        self._building = None
        if request is not None:
            classes = {instance: sop_class for sop_class, instance in request.references}
            refused = [Path(p).name.removesuffix(SUFFIX) for p, _ in outcome.refused]
            failed = list(request.failed) + [
                (classes.get(uid, ""), uid, REASON_PROCESSING_FAILURE) for uid in refused if uid in classes
            ]
            self.requests.update(
                request,
                status=DONE if outcome.volumes else FAILURE,
                info="NORMAL" if outcome.volumes else "PROC_FAILURE",
                failed=failed,
                volumes=[v.path for v in outcome.volumes],
                fileset_ids=[v.fileset_id for v in outcome.volumes],
            )

    def _serve_request(self, request: MediaRequest) -> None:
        if request.status != PENDING:  # cancelled while queued
            return
        found, failed = [], []
        for sop_class, sop_instance in request.references:
            path = self.spool.find(sop_instance)
            if path is None:
                failed.append((sop_class, sop_instance, REASON_NO_SUCH_INSTANCE))
            else:
                found.append(path)
        self.requests.update(request, status=CREATING, info="NORMAL", failed=failed)
        if not found:
            self.requests.update(request, status=FAILURE, info="NO_INSTANCES")
            return
        claimed = self.spool.claim_instances(_request_group(request.uid), self._new_fileset_id(), found)
        self.log("media-request", request=request.uid, instances=len(found), missing=len(failed))
        self._build(claimed, request)

    def _build_loop(self) -> None:
        waiting = {_request_group(r.uid): r for r in self.requests.requests.values() if r.status == CREATING}
        for claimed in self.spool.interrupted():  # a crash or a stop left these claimed: build them first
            self._guarded(self._build, claimed, waiting.get(claimed.group))
        for request in self.requests.requests.values():  # initiated before a restart, not yet started
            if request.status == PENDING:
                self._jobs.put(request)
        last_status = 0.0
        while not self._stop.is_set():
            try:
                job = self._jobs.get(timeout=0.2)
            except queue.Empty:
                job = None
            if isinstance(job, MediaRequest):
                self._guarded(self._serve_request, job)
            for group in self._due():
                if self._stop.is_set():
                    break
                with self._lock:  # forgotten before the claim: an instance landing after it starts a new group
                    self._activity.pop(group, None)
                claimed = self.spool.claim(group, self._new_fileset_id())
                if claimed is not None:
                    self._guarded(self._build, claimed)
            if time.monotonic() - last_status > 1.0:
                self._guarded(self._write_status)
                last_status = time.monotonic()

    def _guarded(self, fn, *args) -> None:  # type: ignore[no-untyped-def]
        """A failure of one disc is logged; the node keeps serving (the spool still holds the instances)."""
        try:
            fn(*args)
        except Exception as exc:
            self._building = None
            self.log("error", where=getattr(fn, "__name__", "?"), error=f"{type(exc).__name__}: {exc}")

    # --- life cycle ---------------------------------------------------------------------------------------
    def start(self) -> None:
        """Listen and start building."""
        self.scp.start(self.config.host, self.config.port, self.config.aet, self.config.ssl_context)
        self._builder.start()
        self._write_status()
        self.log(
            "start",
            aet=self.config.aet,
            host=self.config.host,
            port=self.config.port,
            output=str(self.config.output),
            pending_groups=len(self._activity),
            interrupted_discs=len(self.spool.interrupted()),
        )

    def stop(self) -> None:
        """Stop listening; finish the disc being built; what waits stays in the spool for the next start."""
        self.scp.stop()
        self._stop.set()
        self._builder.join()
        self._write_status()
        self.catalog.close()
        self.log("stop", pending_groups=len(self._activity), received=self.counts["received"])

    def wait(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set (by SIGTERM or Ctrl-C)."""
        while not stop.wait(0.5):
            pass
