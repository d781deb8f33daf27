"""Reports to authorities: NCMEC's CyberTipline (XML documents, the Reporting API client,
the report state machine) and a JSON export for authorities without an API."""
