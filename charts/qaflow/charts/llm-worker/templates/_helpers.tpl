{{/* The consumer group whose lag KEDA reads: keda.consumerGroup, else the workers' QAFLOW_CONSUMER_GROUP. */}}
{{- define "qaflow.llmWorker.group" -}}
{{- $c := include "qaflow.contract" . | fromYaml -}}
{{- .Values.autoscaling.keda.consumerGroup | default (index (.Values.env | default dict) "QAFLOW_CONSUMER_GROUP") | default (index ($c.env | default dict) "QAFLOW_CONSUMER_GROUP") | default "qaflow-llm-worker" -}}
{{- end -}}
