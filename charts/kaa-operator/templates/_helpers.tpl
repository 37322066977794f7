{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "kaa-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, with the chart name unless it already contains it. */}}
{{- define "kaa-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kaa-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kaa-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kaa-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kaa-operator.labels" -}}
helm.sh/chart: {{ include "kaa-operator.chart" . }}
{{ include "kaa-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kaa
{{- end }}

{{- define "kaa-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kaa-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kaa-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The rules kaa-operator needs where it reconciles KaaClusters (least privilege). */}}
{{- define "kaa-operator.rules" -}}
# watch KaaClusters; patch adds and removes the etcd-cleanup finalizer
- apiGroups: [kaaproject.org]
  resources: [kaaclusters]
  verbs: [get, list, watch, update, patch]
# status only through the status subresource
- apiGroups: [kaaproject.org]
  resources: [kaaclusters/status]
  verbs: [get, update, patch]
# owner references with blockOwnerDeletion on the owned objects
- apiGroups: [kaaproject.org]
  resources: [kaaclusters/finalizers]
  verbs: [update]
# owned objects, applied server-side (patch) and removed when the spec drops them
- apiGroups: [apps]
  resources: [deployments, statefulsets]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [""]
  resources: [services, configmaps]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list, watch, create, update, patch, delete]
# the SQL and document-store connection strings (read only)
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
# mark the operations pods being drained (pod-deletion-cost) so the
# ReplicaSet removes those first when scaling down
- apiGroups: [""]
  resources: [pods]
  verbs: [patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}
