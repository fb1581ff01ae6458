"""HTTP plumbing shared by the Neutron API and the identity endpoint: request
limits, the crash barrier and the uvicorn connection guard. It knows neither
app's resources, so both may use it without one reaching into the other."""
