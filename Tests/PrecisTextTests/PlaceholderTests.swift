import Testing
import PrecisText
