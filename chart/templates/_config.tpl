{{/*
Body of <environment>.yaml. The first line is the switch exactly as the
runbook shows it; the rest is what the scheduler needs to build worker Jobs.
*/}}
{{- define "leviathan.autonomyConfig" -}}
autonomy_enabled: {{ include "leviathan.autonomy.enabled" . }}
# Leviathan autonomy config: the scheduler reads it at the start of every tick,
# the control plane follows every change to it without a restart.
reason: {{ include "leviathan.autonomy.reason" . | toJson }}
{{- with include "leviathan.autonomy.reviewBy" . }}
# When someone must look at this disable again; past it the switch stays off and the review is overdue.
review_by: {{ . | toJson }}
{{- end }}
scheduler:
  maxConcurrentWorkers: {{ .Values.scheduler.maxConcurrentWorkers }}
  maxJobsPerTick: {{ .Values.scheduler.maxJobsPerTick }}
  pauseAfterFailures: {{ .Values.scheduler.pauseAfterFailures }}
  {{- $names := list }}
  {{- range .Values.scheduler.tasks }}
  {{- if has .name $names }}
  {{- fail (printf "scheduler.tasks: task name %q is used twice; names must be unique" .name) }}
  {{- end }}
  {{- $names = append $names .name }}
  {{- end }}
  {{- if .Values.scheduler.tasks }}
  tasks:
    {{- toYaml .Values.scheduler.tasks | nindent 4 }}
  {{- else }}
  tasks: []
  {{- end }}
worker:
  jobNamePrefix: {{ include "leviathan.worker.app" . }}
  # Identifies this release's worker Jobs (counted for the guardrails).
  selector:
    app: {{ include "leviathan.worker.app" . }}
    app.kubernetes.io/instance: {{ .Release.Name }}
  # The one list per tick: this release's Jobs, workers and the tick's own Job.
  # The tick's Job names the CronJob, which becomes the workers' owner, so
  # `helm uninstall` garbage-collects them too.
  releaseSelector:
    app.kubernetes.io/name: {{ include "leviathan.name" . }}
    app.kubernetes.io/instance: {{ .Release.Name }}
  labels:
    app.kubernetes.io/name: {{ include "leviathan.name" . }}
    app.kubernetes.io/component: worker
    app.kubernetes.io/part-of: leviathan
    app.kubernetes.io/managed-by: leviathan-scheduler
  backoffLimit: {{ .Values.worker.backoffLimit }}
  activeDeadlineSeconds: {{ .Values.worker.activeDeadlineSeconds }}
  ttlSecondsAfterFinished: {{ .Values.worker.ttlSecondsAfterFinished }}
  runAsUser: {{ .Values.worker.runAsUser }}
  runAsGroup: {{ .Values.worker.runAsGroup }}
  resources:
    {{- toYaml .Values.worker.resources | nindent 4 }}
  {{- /* Worker placement and volumes (issue 22): read by the scheduler's settings.py. */}}
  {{- range $key := list "serviceAccountName" "priorityClassName" "nodeSelector" "tolerations" "affinity" "volumes" "volumeMounts" }}
  {{- with get $.Values.worker $key }}
  {{ $key }}:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- end }}
  {{- with (include "leviathan.imagePullSecretNames" . | fromYamlArray) }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- else }}
  imagePullSecrets: []
  {{- end }}
{{- end -}}
