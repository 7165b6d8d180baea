"""`manage.py check_deploy`: verify this node's configuration and compare it with the other nodes'."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from monitoring.deploy import default_node_name, deploy_check
from monitoring.models import DeployNode


class Command(BaseCommand):
    help = (
        "Check this node's database, cache, broker, storage and migrations, record fingerprints of its "
        "configuration (never the secrets) and compare them with the other nodes seen recently. "
        "Exits 1 when anything differs or fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--node", default=default_node_name(), help="This node's name (default host:DATA_DIR).")
        parser.add_argument(
            "--within-hours", type=float, default=24.0, help="Compare with nodes checked this recently (default 24)."
        )
        parser.add_argument("--forget", metavar="NODE", help="Remove a decommissioned node's record and stop.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["forget"]:
            deleted, _ = DeployNode.objects.filter(name=options["forget"]).delete()
            if not deleted:
                raise CommandError(f"No node named {options['forget']!r} has been recorded.")
            self.stdout.write(f"Forgot {options['forget']}.")
            return
        findings = deploy_check(node=options["node"], recent=timedelta(hours=options["within_hours"]))
        self.stdout.write(f"Node {options['node']}")
        for finding in findings:
            label = self.style.SUCCESS("ok  ") if finding.ok else self.style.ERROR("FAIL")
            self.stdout.write(f"{label}  {finding.name:<28} {finding.detail}")
        failed = [finding.name for finding in findings if not finding.ok]
        if failed:
            raise CommandError(f"{len(failed)} check(s) failed: {', '.join(failed)}")
        self.stdout.write(self.style.SUCCESS("This node matches the others."))
