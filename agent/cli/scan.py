"""``veil scan``: classify files and folders; ``--action`` acts through agent/actions/files.py;
``--cluster`` judges on Ray (agent/cluster.py) and writes, acts and exits exactly as a local scan."""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path

from agent.cli.common import config_of, open_audit, open_vault
from agent.errors import EXIT_OK


def cmd_scan(args: argparse.Namespace) -> int:
    import os

    from agent.actions.files import FileActions
    from agent.classifier import default_threads, open_classifier
    from agent.decode import DecodeLimits
    from agent.errors import EXIT_FLAGGED, EXIT_UNREADABLE, FatalError
    from agent.outcome import MOVING_ACTIONS
    from agent.scan import scan
    from agent.scan_output import Progress, ResultWriter
    from agent.state import StateDB

    if args.threads < 0:
        raise FatalError("--threads must be >= 0")
    cluster = None
    if args.cluster is not None:
        from agent.cluster import ClusterProgress, parse_address

        if args.action in MOVING_ACTIONS:
            raise FatalError(f"--action {args.action} changes files and runs only on this machine: use --action log or none with --cluster")
        cluster = parse_address(args.cluster)
    config = config_of(args)
    profile = config.profile(args.profile)
    threads = args.threads or default_threads()
    audit = open_audit(config) if args.action != "none" else None
    vault = open_vault(config, audit) if audit is not None and args.action in MOVING_ACTIONS else None
    # Blurred stand-ins are Veil's own output: on record where a running agent looks, so it never judges them.
    state = StateDB(config.data_path / "state.sqlite3") if args.action == "blur" else None
    output = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout
    flagged = unreadable = False
    progress = Progress() if cluster is None else ClusterProgress()
    try:
        with open_classifier(config.model) as classifier, ExitStack() as stack:
            actions = None if audit is None else FileActions(
                audit, vault, classifier.model.name, "scan", log_benign=config.audit.log_benign,
                on_standin=state.add_standin if state is not None else None, warn=lambda line: print(f"veil: {line}", file=sys.stderr))
            writer = ResultWriter(output, args.format)
            regions = config.model.regions if args.regions is None else args.regions == "on"
            paths = [Path(os.path.expanduser(p)) for p in args.paths]
            if cluster is None:
                results = scan(paths, classifier, profile, threads, not args.no_recursive, DecodeLimits(regions=regions))
            else:
                from agent.cluster import ClusterProgress, connected, scan_on_cluster

                ray = stack.enter_context(connected(cluster))
                results = scan_on_cluster(ray, paths, config.model, profile, not args.no_recursive, DecodeLimits(regions=regions),
                                          progress if isinstance(progress, ClusterProgress) else None)
            try:
                for result in results:
                    writer.write(result)
                    progress.update(result)
                    if actions is not None:
                        actions.apply(result, profile, args.action)
                    flagged |= result.flagged
                    unreadable |= result.prediction == "error"
            except KeyboardInterrupt:
                results.close()  # stops the decoders, or cancels the cluster's tasks, before saying the output is cut short
                writer.mark_partial("interrupted")
                raise
            finally:
                results.close()
    finally:
        progress.close()
        if state is not None:
            state.close()
        if args.output:
            output.close()
    return EXIT_FLAGGED if flagged else EXIT_UNREADABLE if unreadable else EXIT_OK
