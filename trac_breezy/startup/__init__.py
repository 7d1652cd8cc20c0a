"""Container start-up: from `docker run` to a serving Apache.

The entrypoint (root, then the servers' user) validates the settings, renders
Apache's configuration and runs the admin tasks start-up needs; supervisord
then keeps Apache up, and the healthcheck asks both apps whether they answer.
Nothing here is imported inside Apache.
"""
