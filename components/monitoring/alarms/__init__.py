"""The alarms, planned as plain data: one module per kind of source (`serving`, `drift`,
`training`, `features`, `database`, `online_store`), `plan.plan_alarms` puts them in order."""
