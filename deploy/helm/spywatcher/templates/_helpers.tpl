{{- define "spywatcher.name" -}}{{ .Release.Name }}-spywatcher{{- end -}}
{{- define "spywatcher.labels" -}}
app.kubernetes.io/name: spywatcher
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
