{{/*
Labels. Selectors use only app.kubernetes.io/name and app.kubernetes.io/instance, which
never change over a release's life; the other labels may.
*/}}

{{/* Labels of a subchart's objects. */}}
{{- define "qaflow.labels" -}}
helm.sh/chart: {{ include "qaflow.chart" . }}
{{ include "qaflow.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | default .Chart.Version | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: qaflow
app.kubernetes.io/component: {{ include "qaflow.name" . }}
{{- end -}}

{{- define "qaflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "qaflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of an umbrella-owned component: include "qaflow.componentLabels" (list $ "redis"). */}}
{{- define "qaflow.componentLabels" -}}
{{- $ctx := index . 0 -}}
helm.sh/chart: {{ include "qaflow.chart" $ctx }}
{{ include "qaflow.componentSelectorLabels" . }}
app.kubernetes.io/version: {{ $ctx.Chart.AppVersion | default $ctx.Chart.Version | quote }}
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
app.kubernetes.io/part-of: qaflow
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "qaflow.componentSelectorLabels" -}}
{{- $ctx := index . 0 -}}
app.kubernetes.io/name: {{ index . 1 }}
app.kubernetes.io/instance: {{ $ctx.Release.Name }}
{{- end -}}
