{{/*
Overrides users expect of a chart (issue 22): common annotations, global image registry and pull
secrets, extra env/volumes. Helpers only; the templates include them.
*/}}

{{/*
An `annotations:` block of commonAnnotations merged with the object's own (which win), or nothing.
Usage: include "leviathan.metadataAnnotations" (dict "root" $ "annotations" .Values.x.annotations)
*/}}
{{- define "leviathan.metadataAnnotations" -}}
{{- $all := merge (deepCopy (.annotations | default dict)) (.root.Values.commonAnnotations | default dict) -}}
{{- with $all -}}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{/*
The pull secret names, from imagePullSecrets and global.imagePullSecrets, each given as a name or as
{name: ...}, without repeats, as a YAML list of strings.
*/}}
{{- define "leviathan.imagePullSecretNames" -}}
{{- $names := list -}}
{{- $global := (.Values.global | default dict).imagePullSecrets | default list -}}
{{- range (concat (.Values.imagePullSecrets | default list) $global) -}}
{{- $name := . -}}
{{- if kindIs "map" . -}}{{- $name = .name -}}{{- end -}}
{{- if not $name -}}
{{- fail (printf "imagePullSecrets: %v has no name (give a Secret name, or {name: <Secret>})" .) -}}
{{- end -}}
{{- $names = append $names (toString $name) -}}
{{- end -}}
{{- toYaml (uniq $names) -}}
{{- end -}}

{{/*
An image repository with global.imageRegistry in place of its registry (the first path element when
it names a host: it has a dot or a port, or is `localhost`), or in front of it when it names none.
Usage: include "leviathan.imageRepository" (dict "repository" "ghcr.io/leviathan/scheduler" "root" $)
*/}}
{{- define "leviathan.imageRepository" -}}
{{- $registry := (.root.Values.global | default dict).imageRegistry -}}
{{- if not $registry -}}
{{- .repository -}}
{{- else -}}
{{- $parts := splitList "/" .repository -}}
{{- $first := first $parts -}}
{{- if and (gt (len $parts) 1) (or (contains "." $first) (contains ":" $first) (eq $first "localhost")) -}}
{{- $parts = rest $parts -}}
{{- end -}}
{{- printf "%s/%s" (trimSuffix "/" $registry) (join "/" $parts) -}}
{{- end -}}
{{- end -}}

{{/*
A container's extraEnv/extraEnvFrom/extraVolumeMounts, and a pod's extraVolumes. The names the chart
uses itself are refused: an override must not replace the config mount or the switch's env.
Usage: include "leviathan.extraEnv" (dict "values" .Values.controlPlane "key" "controlPlane" "reserved" (list ...))
*/}}
{{- define "leviathan.extraEnv" -}}
{{- range .values.extraEnv -}}
{{- if has .name $.reserved -}}
{{- fail (printf "%s.extraEnv: %s is set by the chart; it cannot be overridden" $.key .name) -}}
{{- end -}}
{{- end -}}
{{- with .values.extraEnv }}
{{ toYaml . }}
{{- end -}}
{{- end -}}

{{- define "leviathan.extraVolumeMounts" -}}
{{- range .values.extraVolumeMounts -}}
{{- if or (has .name $.reserved) (hasPrefix "/etc/leviathan" .mountPath) -}}
{{- fail (printf "%s.extraVolumeMounts: %s at %s would shadow a volume the chart mounts" $.key .name .mountPath) -}}
{{- end -}}
{{- end -}}
{{- with .values.extraVolumeMounts }}
{{ toYaml . }}
{{- end -}}
{{- end -}}

{{- define "leviathan.extraVolumes" -}}
{{- range .values.extraVolumes -}}
{{- if has .name $.reserved -}}
{{- fail (printf "%s.extraVolumes: the chart already has a volume named %s" $.key .name) -}}
{{- end -}}
{{- end -}}
{{- with .values.extraVolumes }}
{{ toYaml . }}
{{- end -}}
{{- end -}}
