# The lab's S3 endpoint: moto's S3 server on the bookworm lab image (base tag filled in by lab.py).
FROM @BASE@
COPY site /opt/moto
COPY moto.service /etc/systemd/system/moto.service
RUN systemctl enable moto.service
