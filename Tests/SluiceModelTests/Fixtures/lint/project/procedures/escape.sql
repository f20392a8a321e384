-- Reads another org's warehouse: runs refuse it, and so does lint.
ATTACH DATABASE '.sluice/orgs/globex/warehouse.sqlite' AS other;
