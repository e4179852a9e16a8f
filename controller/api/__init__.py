"""The REST API: the app, its request bodies and limits, FHIR in and out, one router per role."""
