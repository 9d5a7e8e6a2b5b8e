// `dps-mqtt diagnose` as a library call: diagnose() and the report's shapes.
export { AZURE_ROOT_CAS, type ExpectedRoot } from './azure-roots.js';
export { diagnose } from './diagnose.js';
export { flagHintForReason } from './flag-hints.js';
export {
  type DiagnoseOptions,
  type DiagnosisReport,
  STEP_NAMES,
  type StepName,
  type StepResult,
  type StepStatus,
  type TransportDiagnosis,
} from './types.js';
