"""The one consumer-group core (``core``) and the shared blocking read over many streams
(``shared_read``) that every reader of the service's Redis streams is built on."""
