{{/*
Sticky state. The live ConfigMap and CronJob are the truth about the switch and
the emergency stop: a value left at null keeps what they say, so no routine
upgrade (whatever it does with values) undoes a `kubectl edit` or `kubectl patch`.
`lookup` finds nothing on a first install and under `helm template` or a client
--dry-run; then the install defaults apply.

A template cannot tell a value typed on this command line from one Helm reused
from the release (--reuse-values, --reset-then-reuse-values, or a Helm 3 upgrade
without -f/--set). So turning the switch on (or the stop off) over the live state
also needs the live object's version, which every later write changes: a
confirmation reused from an earlier release never matches again.
*/}}

{{- define "leviathan.live.configMap" -}}
{{- lookup "v1" "ConfigMap" .Release.Namespace (include "leviathan.configMapName" .) | toJson -}}
{{- end -}}

{{- define "leviathan.live.cronJob" -}}
{{- lookup "batch/v1" "CronJob" .Release.Namespace (include "leviathan.scheduler.fullname" .) | toJson -}}
{{- end -}}

{{/*
"true" when this release's control-plane Service exists: the release is
installed, and `lookup` can see the cluster (it sees nothing under
`helm template` and a client --dry-run). A missing ConfigMap or CronJob is then
one someone deleted, not a first install.
*/}}
{{- define "leviathan.live.installed" -}}
{{- if lookup "v1" "Service" .Release.Namespace (include "leviathan.controlPlane.fullname" .) -}}true{{- end -}}
{{- end -}}

{{/* The live config file's text, or "" when there is no live ConfigMap. */}}
{{- define "leviathan.live.configBody" -}}
{{- $live := include "leviathan.live.configMap" . | fromJson -}}
{{- dig "data" (include "leviathan.configFile" .) "" $live -}}
{{- end -}}

{{/*
The live switch: "true", "false", "unreadable" (the file is outside the switch grammar, so the
scheduler fails closed), or "" (no ConfigMap). The grammar is the reader's own
(files/switch-grammar.json).
*/}}
{{- define "leviathan.live.autonomy" -}}
{{- $live := include "leviathan.live.configMap" . | fromJson -}}
{{- if $live -}}
{{- $body := include "leviathan.live.configBody" . -}}
{{- if or (gt (len $body) (include "leviathan.grammar.maxBytes" . | int)) (not (regexMatch (include "leviathan.grammar" (list . "grammar")) $body)) -}}
unreadable
{{- else if regexMatch (include "leviathan.grammar" (list . "on")) $body -}}
true
{{- else -}}
false
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The live file's KEY line value (reason or review_by), without its quotes; "" when absent or unreadable. */}}
{{- define "leviathan.live.field" -}}
{{- $root := index . 0 -}}
{{- if ne (include "leviathan.live.autonomy" $root) "unreadable" -}}
{{- $line := regexFind (printf "(?m)^%s: \"[^\"\n]*\"$" (index . 1)) (include "leviathan.live.configBody" $root) -}}
{{- with $line }}{{ trimPrefix (printf "%s: \"" (index $ 1)) . | trimSuffix "\"" }}{{ end -}}
{{- end -}}
{{- end -}}

{{/*
Refuse an upgrade that would rename this release's scheduler CronJob (its worker
Jobs would be garbage-collected with the old one) or move the config to another
key: the values it was installed with were not passed.
*/}}
{{- define "leviathan.upgradeGuard" -}}
{{- $name := include "leviathan.scheduler.fullname" . -}}
{{- $installed := "" -}}
{{- $installedEnv := "" -}}
{{- range (lookup "batch/v1" "CronJob" .Release.Namespace "").items -}}
{{- $labels := .metadata.labels | default dict -}}
{{- if and (eq (get $labels "app.kubernetes.io/instance") $.Release.Name) (eq (get $labels "app.kubernetes.io/part-of") "leviathan") (eq (get $labels "app.kubernetes.io/component") "scheduler") (ne .metadata.name $name) -}}
{{- $installed = .metadata.name -}}
{{- range (dig "spec" "jobTemplate" "spec" "template" "spec" "containers" list .) -}}
{{- range (.env | default list) -}}
{{- if eq .name "LEVIATHAN_AUTONOMY_CONFIG" -}}
{{- $installedEnv = base (toString .value) | trimSuffix ".yaml" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $live := include "leviathan.live.configMap" . | fromJson -}}
{{- $key := include "leviathan.configFile" . -}}
{{- if and (not $installed) $live (not (hasKey ($live.data | default dict) $key)) -}}
{{- $installed = printf "config key %s" (keys ($live.data | default dict) | sortAlpha | join ", ") -}}
{{- $installedEnv = keys ($live.data | default dict) | sortAlpha | first | default "" | trimSuffix ".yaml" -}}
{{- end -}}
{{- if $installed -}}
{{- $hint := "the values it was installed with" -}}
{{- if and $installedEnv (ne $installedEnv .Values.environment) -}}
{{- $hint = printf "the values it was installed with (e.g. -f values/%s.yaml or --set environment=%s)" $installedEnv $installedEnv -}}
{{- end -}}
{{- fail (printf "refusing to upgrade release %q: it runs %s, and these values would make it %s (environment %q): the old CronJob and the worker Jobs it owns would be deleted. Pass %s; to really move it, uninstall and install again" .Release.Name $installed (ternary $name (printf "config key %s" $key) (hasPrefix "config key" $installed | not)) .Values.environment $hint) -}}
{{- end -}}
{{- end -}}

{{/* The switch this render writes: "true" or "false". */}}
{{- define "leviathan.autonomy.enabled" -}}
{{- $value := .Values.autonomy.enabled -}}
{{- $live := include "leviathan.live.autonomy" . -}}
{{- $name := include "leviathan.configMapName" . -}}
{{- if kindIs "bool" $value -}}
{{- if and $value $live (ne $live "true") -}}
{{- $version := dig "metadata" "resourceVersion" "" (include "leviathan.live.configMap" . | fromJson) | toString -}}
{{- if ne (toString .Values.autonomy.confirmEnable) $version -}}
{{- fail (printf "autonomy is off in the live ConfigMap %s (autonomy_enabled: %s), and autonomy.enabled=true may be a value Helm reused from an earlier release. To turn autonomy on, also pass --set autonomy.confirmEnable=%s (the ConfigMap's resourceVersion); to keep it off, pass --set autonomy.enabled=false (or drop the value: --reset-then-reuse-values --set autonomy.enabled=null)" $name $live $version) -}}
{{- end -}}
{{- end -}}
{{- $value -}}
{{- else if .Values.gitops -}}
{{- fail "gitops: set autonomy.enabled to true or false in your values: a helm template render cannot read the live switch, so it lives in git" -}}
{{- else if eq $live "unreadable" -}}
{{- fail (printf "the live ConfigMap %s is outside the switch file's form in %s (the scheduler is failing closed): pass --set autonomy.enabled=false (or =true with autonomy.confirmEnable) to write a valid one" $name (include "leviathan.configFile" .)) -}}
{{- else if $live -}}
{{- $live -}}
{{- else if include "leviathan.live.installed" . -}}
{{- include "leviathan.upgradeGuard" . -}}
{{- fail (printf "the live ConfigMap %s is missing (deleted? the scheduler is failing closed), so there is no switch to keep: pass --set autonomy.enabled=false to recreate it off, or =true to recreate it on" $name) -}}
{{- else -}}
{{- .Values.autonomy.enabledOnInstall -}}
{{- end -}}
{{- end -}}

{{/* The reason this render writes: the value, else the live reason while the switch keeps its state. */}}
{{- define "leviathan.autonomy.reason" -}}
{{- if kindIs "string" .Values.autonomy.reason -}}
{{- .Values.autonomy.reason -}}
{{- else if eq (include "leviathan.live.autonomy" .) (include "leviathan.autonomy.enabled" .) -}}
{{- include "leviathan.live.field" (list . "reason") -}}
{{- end -}}
{{- end -}}

{{/* The review_by this render writes: the value, else the live one while the switch keeps its state. */}}
{{- define "leviathan.autonomy.reviewBy" -}}
{{- if kindIs "string" .Values.autonomy.reviewBy -}}
{{- .Values.autonomy.reviewBy -}}
{{- else if eq (include "leviathan.live.autonomy" .) (include "leviathan.autonomy.enabled" .) -}}
{{- include "leviathan.live.field" (list . "review_by") -}}
{{- end -}}
{{- end -}}

{{/* The CronJob's suspend this render writes: "true" or "false". */}}
{{- define "leviathan.scheduler.suspend" -}}
{{- $value := .Values.scheduler.suspend -}}
{{- $live := include "leviathan.live.cronJob" . | fromJson -}}
{{- $liveSuspend := dig "spec" "suspend" false $live -}}
{{- if kindIs "bool" $value -}}
{{- if and $live $liveSuspend (not $value) -}}
{{- $generation := dig "metadata" "generation" "" $live | toString -}}
{{- if ne (toString .Values.scheduler.confirmResume) $generation -}}
{{- fail (printf "the CronJob %s is suspended (the emergency stop), and scheduler.suspend=false may be a value Helm reused from an earlier release. To keep it stopped, pass --set scheduler.suspend=true (or drop the value: --reset-then-reuse-values --set scheduler.suspend=null); to resume, use kubectl patch cronjob %s -n %s -p '{\"spec\":{\"suspend\":false}}', or also pass --set scheduler.confirmResume=%s (the CronJob's generation)" (include "leviathan.scheduler.fullname" .) (include "leviathan.scheduler.fullname" .) .Release.Namespace $generation) -}}
{{- end -}}
{{- end -}}
{{- $value -}}
{{- else if $live -}}
{{- $liveSuspend -}}
{{- else if include "leviathan.live.installed" . -}}
{{- /* A CronJob under another name is a rename, not a deletion: say that first. */ -}}
{{- include "leviathan.upgradeGuard" . -}}
{{- fail (printf "the scheduler CronJob %s is missing (deleted?), so there is no suspend state to keep: pass --set scheduler.suspend=true to recreate it stopped, or =false to recreate it running" (include "leviathan.scheduler.fullname" .)) -}}
{{- else -}}
false
{{- end -}}
{{- end -}}
