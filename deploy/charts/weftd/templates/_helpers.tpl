{{/* The revision the injector selects with istio.io/rev ("" is the default revision). */}}
{{- define "weftd.revision" -}}
{{- if .Values.revision }}{{ .Values.revision }}{{ else }}default{{ end -}}
{{- end }}

{{- define "weftd.labels" -}}
app: weftd
istio: pilot
istio.io/rev: {{ include "weftd.revision" . }}
app.kubernetes.io/name: weftd
app.kubernetes.io/part-of: weft
{{- end }}
