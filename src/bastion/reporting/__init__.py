"""Reports to authorities: NCMEC's CyberTipline (XML documents, the Reporting API client,
the report state machine) and a JSON export for authorities without an API.

From decided cases, :mod:`bastion.reporting.case_incidents` does all of the below
(``draft_pending``; ``bastion report from-cases``): incidents, drafts, the cases' "reported"
mark, preservation (:mod:`bastion.evidence.preservation`) and policy auto-approval.

Wiring by hand (one incident = one user's decided cases not yet reported)::

    from bastion.reporting import service as reports
    from bastion.reporting.incident import Incident, IncidentFile, ReportedUser, ...

    incident = Incident(
        key=f"user:{user_id}:{first_case_id}",               # one report per key
        incident_type=INCIDENT_TYPE_OF_DECISION[decision],   # csam, trafficking, ...
        incident_at=..., reporter=reports.reporter_from_settings(settings),
        escalation_reason=..., annotations=("sextortion",), internet_details=(...,),
        reported_users=(ReportedUser(esp_identifier=user_id, ip_capture_events=..., ...),),
        files=(IncidentFile(locator=f"evidence:{evidence_id}", file_name=...,
                            viewed_by_esp=<an audited reveal exists>, ...), ...),
        case_ids=(...))
    schema = reports.load_schema(settings)                   # NCMEC's XSD
    with db.write() as session:                              # with the cases' "reported" mark
        view = reports.create_draft(session, incident=incident, schema=schema,
                                    settings=settings, actor=f"user:{admin_id}")
        # ReportInvalid (naming the element) when it would not validate: nothing stored
    with db.write() as session:
        reports.approve(session, view.id, actor=f"user:{admin_id}")

The workers (``bastion serve``, ``bastion worker``; :func:`bastion.actions.worker.build_worker`)
then submit it, reading each file's bytes through a
:class:`~bastion.reporting.files.FileProvider` (the evidence vault for ``evidence:<id>``).
"""
