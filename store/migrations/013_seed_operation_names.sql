-- 013: the print operation under seed 001's own id (issue 17). Seed 001 §2.1 finds the print
-- operation as operation_id = 'print' in both logs.imposition_operations and logs.job_operations
-- (coating is op003, kiss_cut op006, as before); migration 001 mapped print to op001, so a plant
-- whose planned rows say 'print', as the seed's do, got no print status at all.
--
-- A database whose planned operations already use op001 for print keeps that mapping: changing it
-- under a running plant would stop its print status instead. Any other plant id is configured the
-- same way, by the catalog: UPDATE logs.operation_catalog SET operation_id = '<id>' WHERE
-- operation_name = 'print' (docs/job-status.md, "Operation ids").
UPDATE logs.operation_catalog SET operation_id = 'print', updated_at = now()
WHERE operation_name = 'print' AND operation_id = 'op001'
  AND NOT EXISTS (SELECT 1 FROM logs.job_operations WHERE operation_id = 'op001')
  AND NOT EXISTS (SELECT 1 FROM logs.imposition_operations WHERE operation_id = 'op001')
  AND NOT EXISTS (SELECT 1 FROM logs.operation_catalog WHERE operation_id = 'print');
