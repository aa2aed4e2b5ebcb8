import Testing
import PrecisHub
