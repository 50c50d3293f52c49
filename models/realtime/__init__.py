"""Playing a model in real time: block synthesisers, the play engine, live input (issue #17).

Qt-free: the GUI, MIDI and OSC adapters drive it from outside. Everything here runs at the
model's sample rate, mono float32.
"""
