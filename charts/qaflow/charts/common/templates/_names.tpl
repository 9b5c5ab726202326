{{/*
Names. Every object of a release is "<base>-<component>", where <base> is the release name
(plus "-qaflow" unless it already says qaflow) or global.fullnameOverride. The umbrella and
the subcharts share this one definition, so a subchart can name the objects of another
(the api Service, the Kafka cluster, the database) without knowing where they are rendered.

The templates are global to the release: subcharts render only through the umbrella.
*/}}

{{/* Base name of the release's objects, at most 40 characters (Strimzi appends suffixes to it). */}}
{{- define "qaflow.base" -}}
{{- $global := .Values.global | default dict -}}
{{- if $global.fullnameOverride -}}
{{- $global.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains "qaflow" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-qaflow" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Chart (component) name: "api", "llm-worker", ... ; nameOverride wins. */}}
{{- define "qaflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name of a subchart's objects: "<base>-<chart name>", at most 63 characters. */}}
{{- define "qaflow.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" (include "qaflow.base" .) (include "qaflow.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Full name of any component from any chart: include "qaflow.componentFullname" (list $ "api"). */}}
{{- define "qaflow.componentFullname" -}}
{{- $ctx := index . 0 -}}
{{- printf "%s-%s" (include "qaflow.base" $ctx) (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "<chart>-<version>" for the helm.sh/chart label. */}}
{{- define "qaflow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Service account of a subchart. */}}
{{- define "qaflow.serviceAccountName" -}}
{{- $sa := .Values.serviceAccount | default dict -}}
{{- if $sa.create -}}
{{- default (include "qaflow.fullname" .) $sa.name -}}
{{- else -}}
{{- default "default" $sa.name -}}
{{- end -}}
{{- end -}}

{{/* Kafka: Strimzi cluster name, bootstrap address, KafkaUser name of a component. */}}
{{- define "qaflow.kafka.clusterName" -}}
{{- $k := .Values.global.kafka -}}
{{- default (include "qaflow.base" .) $k.clusterName | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "qaflow.kafka.bootstrap" -}}
{{- $k := .Values.global.kafka -}}
{{- if eq $k.mode "external" -}}
{{- required "global.kafka.bootstrapServers is required when global.kafka.mode=external" $k.bootstrapServers -}}
{{- else -}}
{{- printf "%s-kafka-bootstrap:9092" (include "qaflow.kafka.clusterName" .) -}}
{{- end -}}
{{- end -}}

{{/* include "qaflow.kafka.userName" (list $ "api") */}}
{{- define "qaflow.kafka.userName" -}}
{{- $ctx := index . 0 -}}
{{- printf "%s-%s" (include "qaflow.kafka.clusterName" $ctx) (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* PostgreSQL host, by mode. */}}
{{- define "qaflow.postgres.host" -}}
{{- $pg := .Values.global.postgres -}}
{{- if eq $pg.mode "external" -}}
{{- required "global.postgres.host is required when global.postgres.mode=external" $pg.host -}}
{{- else if eq $pg.mode "cnpg" -}}
{{- printf "%s-rw" (include "qaflow.componentFullname" (list . "pg")) -}}
{{- else -}}
{{- include "qaflow.componentFullname" (list . "postgres") -}}
{{- end -}}
{{- end -}}

{{/* Secret holding the database password (and user/URL), by mode. */}}
{{- define "qaflow.postgres.secretName" -}}
{{- $pg := .Values.global.postgres -}}
{{- if $pg.auth.existingSecret -}}
{{- $pg.auth.existingSecret -}}
{{- else if eq $pg.mode "cnpg" -}}
{{- printf "%s-app" (include "qaflow.componentFullname" (list . "pg")) -}}
{{- else if eq $pg.mode "external" -}}
{{- fail "global.postgres.auth.existingSecret is required when global.postgres.mode=external" -}}
{{- else -}}
{{- include "qaflow.componentFullname" (list . "postgres") -}}
{{- end -}}
{{- end -}}

{{/* Database user: CloudNativePG's bootstrap owner is the configured user too. */}}
{{- define "qaflow.postgres.user" -}}
{{- .Values.global.postgres.user -}}
{{- end -}}

{{/* Redis host, by mode. */}}
{{- define "qaflow.redis.host" -}}
{{- $r := .Values.global.redis -}}
{{- if eq $r.mode "external" -}}
{{- required "global.redis.host is required when global.redis.mode=external" $r.host -}}
{{- else -}}
{{- include "qaflow.componentFullname" (list . "redis") -}}
{{- end -}}
{{- end -}}

{{/* The contract entry of the current subchart (global.contract.services.<chart name>), as YAML. */}}
{{- define "qaflow.contract" -}}
{{- $services := .Values.global.contract.services -}}
{{- if not (hasKey $services .Chart.Name) -}}
{{- fail (printf "global.contract.services has no entry for %q" .Chart.Name) -}}
{{- end -}}
{{- toYaml (index $services .Chart.Name) -}}
{{- end -}}

{{/* A value as a string env value: integral floats (YAML numbers) without exponent. */}}
{{- define "qaflow.str" -}}
{{- if kindIs "float64" . -}}
{{- if eq (floor .) . -}}{{ int64 . }}{{- else -}}{{ . }}{{- end -}}
{{- else if kindIs "invalid" . -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{/* Image reference: [global.image.registry/]repository:tag (tag defaults to global.image.tag, then appVersion). */}}
{{- define "qaflow.image" -}}
{{- $ctx := index . 0 -}}
{{- $img := index . 1 -}}
{{- $g := $ctx.Values.global.image | default dict -}}
{{- $repo := $img.repository -}}
{{- $head := first (splitList "/" $repo) -}}
{{- $hasRegistry := and (contains "/" $repo) (or (contains "." $head) (contains ":" $head) (eq $head "localhost")) -}}
{{- if and $g.registry (not $hasRegistry) -}}
{{- $repo = printf "%s/%s" (trimSuffix "/" $g.registry) $repo -}}
{{- end -}}
{{- $tag := $img.tag | default $g.tag | default $ctx.Chart.AppVersion | toString -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $repo $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}
{{- end -}}
