{{/*
Body of <environment>.yaml: the switch and its context, nothing else, in the one grammar of
files/switch-grammar.json (generated from leviathan_config/switch.py). The render checks its own
text against that grammar, so a value the scheduler would refuse is refused here, naming it.
*/}}
{{- define "leviathan.autonomyConfig" -}}
{{- $reason := include "leviathan.autonomy.reason" . -}}
{{- if not (regexMatch (include "leviathan.grammar" (list . "reasonText")) $reason) -}}
{{- fail (printf "autonomy.reason %q: a reason is printable ASCII without double quotes or backslashes (the switch file's form; see docs/DECISIONS.md)" $reason) -}}
{{- end -}}
{{- $text := printf "autonomy_enabled: %s\nreason: %s\n" (include "leviathan.autonomy.enabled" .) (printf "%q" $reason) -}}
{{- with include "leviathan.autonomy.reviewBy" . -}}
{{- if not (regexMatch (include "leviathan.grammar" (list $ "reviewByText")) .) -}}
{{- fail (printf "autonomy.reviewBy %q: write a date and time with a zone, like 2026-12-01T09:00:00Z" .) -}}
{{- end -}}
{{- $text = printf "%sreview_by: %q\n" $text . -}}
{{- end -}}
{{- if or (gt (len $text) (include "leviathan.grammar.maxBytes" . | int)) (not (regexMatch (include "leviathan.grammar" (list . "grammar")) $text)) -}}
{{- fail (printf "the switch file would be outside its form (at most %s bytes): shorten autonomy.reason" (include "leviathan.grammar.maxBytes" .)) -}}
{{- end -}}
{{- $text -}}
{{- end -}}

{{/*
Body of scheduler.yaml in the settings ConfigMap: what the scheduler needs to build worker Jobs.
While autonomy.releasers is set, changing it is a release decision (release-policy.yaml).
*/}}
{{- define "leviathan.schedulerSettings" -}}
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
    {{- with .Values.commonLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
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
